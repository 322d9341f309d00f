#!/usr/bin/env python3
"""Agreement of a quantised model with its fp32 original on the frames NOT used to calibrate it,
and the report tools/quantize writes. Run by tools/quantize; not meant to be run alone.

Agreement is the rule of tools/agreement.py (tune's too): per frame, same class, one-to-one
greedy by IoU, a match needs IoU >= --iou (0.5); both directions, matched / fp32's boxes and
matched / int8's boxes. Per input and over all inputs; the verdict is on the total.

usage: quantize_report.py CALIB.json RUNS.json --min 0.98 --iou 0.5 --json R.json --md R.md
RUNS.json: [{"input", "fp32": JSONL, "int8": JSONL, "fp32_s", "int8_s"}], one per input.
Exit 0: agreement clears --min; 1: it does not (the report says so); 2: bad data.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_accuracy import load, match_frame  # noqa: E402  (the one matching rule)


def held_out(fp32, int8, calib_frames, iou):
    """(frames, matched, fp32 boxes, int8 boxes) over the frames outside the calibration set."""
    if set(fp32) != set(int8):
        sys.exit(f"the fp32 and int8 runs decoded different frames ({len(fp32)} vs {len(int8)})")
    frames = matched = na = nb = 0
    for f in sorted(set(fp32) - calib_frames):
        frames += 1
        matched += len(match_frame(fp32[f], int8[f], iou))
        na += len(fp32[f])
        nb += len(int8[f])
    return frames, matched, na, nb


def ratio(m, n):
    return m / n if n else 1.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("calib")
    ap.add_argument("runs")
    ap.add_argument("--min", type=float, required=True)
    ap.add_argument("--iou", type=float, default=0.5)
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--extra", default="{}", help="JSON merged into the report (options, sizes)")
    a = ap.parse_args()
    calib = json.load(open(a.calib))
    runs = json.load(open(a.runs))
    used = {os.path.abspath(i["input"]): {c["index"] for c in i["calibration"]} for i in calib["inputs"]}
    rows, tot = [], [0, 0, 0, 0]
    for r in runs:
        cal = used.get(os.path.abspath(r["input"]), set())
        got = held_out(load(r["fp32"]), load(r["int8"]), cal, a.iou)
        tot = [x + y for x, y in zip(tot, got)]
        frames, m, na, nb = got
        rows.append({"input": r["input"], "calibration_frames": len(cal), "held_out_frames": frames,
                     "matched": m, "fp32_boxes": na, "int8_boxes": nb,
                     "fp32_to_int8": ratio(m, na), "int8_to_fp32": ratio(m, nb),
                     "seconds_fp32": r.get("fp32_s"), "seconds_int8": r.get("int8_s")})
    frames, m, na, nb = tot
    if frames == 0 or na + nb == 0:
        print("no held-out frame has a detection: agreement cannot be measured; give more footage "
              "(or fewer calibration frames per input)", file=sys.stderr)
        return 2
    ab, ba = ratio(m, na), ratio(m, nb)
    ok = min(ab, ba) >= a.min
    report = {**json.loads(a.extra), "min_agreement": a.min, "iou": a.iou,
              "agreement": {"held_out_frames": frames, "matched": m, "fp32_boxes": na,
                            "int8_boxes": nb, "fp32_to_int8": ab, "int8_to_fp32": ba},
              "passed": ok, "inputs": rows,
              "calibration": calib,
              "timings_note": "seconds_* are wall times of `vidinfer detect` on the held-out "
                              "evaluation; on a shared machine they are not a speed measurement"}
    with open(a.json, "w") as f:
        json.dump(report, f, indent=2)
    write_md(a.md, report)
    verdict = "PASS" if ok else "FAIL"
    print(f"{verdict}: agreement with fp32 on {frames} held-out frames (same class, IoU >= {a.iou}): "
          f"fp32->int8 {m}/{na} = {ab:.2%}, int8->fp32 {m}/{nb} = {ba:.2%} (min {a.min:.2%} both ways)")
    return 0 if ok else 1


def write_md(path, r):
    g = r["agreement"]
    lines = [f"# Quantisation report: {r.get('model', '')}", "",
             f"- result: **{'written' if r['passed'] else 'refused'}** "
             f"(agreement {min(g['fp32_to_int8'], g['int8_to_fp32']):.2%}, minimum {r['min_agreement']:.2%})",
             f"- options: `{json.dumps(r.get('options', {}))}`",
             f"- sizes: fp32 {r.get('fp32_bytes', '?')} bytes, int8 {r.get('int8_bytes', '?')} bytes",
             f"- calibration: {sum(len(i['calibration']) for i in r['calibration']['inputs'])} frames "
             f"({r['calibration']['kernel']} kernel), listed in the JSON report", "",
             f"Agreement with fp32 on held-out frames (same class, IoU >= {r['iou']}), both directions:", "",
             "| input | calibration frames | held-out frames | fp32 boxes | int8 boxes | fp32→int8 | int8→fp32 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for i in r["inputs"]:
        lines.append(f"| {os.path.basename(i['input'])} | {i['calibration_frames']} | {i['held_out_frames']} | "
                     f"{i['fp32_boxes']} | {i['int8_boxes']} | {i['fp32_to_int8']:.2%} | {i['int8_to_fp32']:.2%} |")
    lines.append(f"| **all** | | {g['held_out_frames']} | {g['fp32_boxes']} | {g['int8_boxes']} | "
                 f"{g['fp32_to_int8']:.2%} | {g['int8_to_fp32']:.2%} |")
    lines += ["", "Speed is not measured here: compare with `vidinfer bench --model` on an idle machine."]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
