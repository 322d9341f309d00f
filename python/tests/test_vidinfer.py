"""Tests of the installed `vidinfer` wheel (run by tools/python_test from outside the source
tree, in a fresh venv). Environment, set by the runner:
  VIDINFER_TEST_VIDEO    samples/vtest.avi
  VIDINFER_TEST_JSONL    the CLI's JSONL of that video (same settings: fp32, batch 1, CPU)
  VIDINFER_SOURCE_ROOT   the source tree (the package must not be imported from it)
Each one missing is a failure, not a skip.
"""
import gc
import json
import math
import os
import signal
import threading
import time

import numpy as np
import pytest

import vidinfer


def env(name):
    v = os.environ.get(name)
    assert v, f"{name} is not set (run python/tests through tools/python_test)"
    return v


VIDEO = env("VIDINFER_TEST_VIDEO")
assert os.path.isfile(VIDEO), f"no video at {VIDEO}: run tools/setup"


def threads():
    """Threads of this process, native ones included."""
    return len(os.listdir("/proc/self/task"))


def f32(x):
    """A float32 as serde_json writes it (shortest round trip)."""
    return str(np.float32(x))


def jsonl_line(r):
    """A FrameResult as the CLI's JSONL line."""
    dets = [
        '{"class_id":%d,"label":%s,"score":%s,"x1":%s,"y1":%s,"x2":%s,"y2":%s}'
        % (c, json.dumps(lab), f32(s), f32(b[0]), f32(b[1]), f32(b[2]), f32(b[3]))
        for b, s, c, lab in zip(r.boxes, r.scores, r.class_ids, r.labels)
    ]
    pts = math.floor(r.pts * 1e6 + 0.5) / 1e6
    return '{"frame":%d,"pts":%r,"detections":[%s]}' % (r.frame, pts, ",".join(dets))


@pytest.fixture(scope="session", autouse=True)
def runtime_loaded():
    """Loads ONNX Runtime once (its library stays for the process) before thread counts."""
    for _ in vidinfer.detect(VIDEO, max_frames=2):
        pass


def test_installed_outside_the_source_tree():
    root = os.path.realpath(env("VIDINFER_SOURCE_ROOT"))
    here = os.path.realpath(vidinfer.__file__)
    assert not here.startswith(root + os.sep), here
    lib = os.path.realpath(vidinfer.ort_library())
    assert lib.startswith(os.path.dirname(here) + os.sep), f"ONNX Runtime from {lib}"


def test_detect_matches_the_cli_jsonl_byte_for_byte():
    with open(env("VIDINFER_TEST_JSONL")) as f:
        cli = f.read()
    mine = "".join(jsonl_line(r) + "\n" for r in vidinfer.detect(VIDEO) if r.inferred)
    assert cli.count("\n") > 100
    assert mine == cli


def test_iterator_is_in_order_and_complete_per_input(tmp_path):
    n = 60
    other = str(tmp_path / "other.avi")
    os.symlink(VIDEO, other)
    seen = {VIDEO: [], other: []}
    for r in vidinfer.detect([VIDEO, other], max_frames=n, streams=2):
        seen[r.input].append(r.frame)
        assert r.boxes.shape == (len(r), 4) and r.boxes.dtype == np.float32
        assert r.scores.shape == (len(r),) and r.class_ids.shape == (len(r),)
        assert len(r.labels) == len(r)
    assert seen == {VIDEO: list(range(n)), other: list(range(n))}


def test_one_input_after_another_keeps_list_order(tmp_path):
    other = str(tmp_path / "other.avi")
    os.symlink(VIDEO, other)
    order = [(r.input, r.frame) for r in vidinfer.detect([VIDEO, other], max_frames=5, streams=1)]
    assert order == [(VIDEO, i) for i in range(5)] + [(other, i) for i in range(5)]


def test_frames_and_detector_on_decoded_frames_match_detect():
    n = 20
    results = list(vidinfer.detect(VIDEO, max_frames=n, frames=True, preprocess="exact"))
    assert [r.frame for r in results] == list(range(n))
    for r in results:
        assert r.image is not None
        assert r.image.shape == (r.height, r.width, 3) and r.image.dtype == np.uint8
    det = vidinfer.Detector(batch=4)
    again = det([r.image for r in results])
    assert len(again) == n
    for a, b in zip(results, again):
        assert b.labels == a.labels
        np.testing.assert_array_equal(b.class_ids, a.class_ids)
        np.testing.assert_array_equal(b.boxes, a.boxes)
        np.testing.assert_array_equal(b.scores, a.scores)
    # One (H, W, 3) array and an (N, H, W, 3) array are accepted too.
    assert len(det(results[0].image)) == 1
    assert len(det(np.stack([r.image for r in results[:3]]))) == 3


def test_no_frames_means_no_images():
    r = next(iter(vidinfer.detect(VIDEO, max_frames=1)))
    assert r.image is None


def test_stride_marks_frames_left_out():
    rs = list(vidinfer.detect(VIDEO, max_frames=6, stride=3))
    assert [r.inferred for r in rs] == [True, False, False, True, False, False]
    assert all(len(r) == 0 for r in rs if not r.inferred)


def test_tracking_gives_track_ids():
    rs = list(vidinfer.detect(VIDEO, max_frames=30, track=True))
    assert all(r.track_ids is not None and len(r.track_ids) == len(r) for r in rs)
    assert any(t is not None for r in rs for t in r.track_ids)


def test_a_missing_input_raises_input_error_with_the_librarys_message(tmp_path):
    missing = str(tmp_path / "no_such.mp4")
    with pytest.raises(vidinfer.InputError, match="input not found") as e:
        list(vidinfer.detect(missing))
    assert missing in str(e.value)


def test_a_file_that_is_not_a_video_raises_input_error(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(vidinfer.InputError, match="junk.mp4"):
        list(vidinfer.detect(str(junk)))


def test_a_missing_model_raises_model_error(tmp_path):
    missing = str(tmp_path / "no_such.onnx")
    with pytest.raises(vidinfer.ModelError, match="model file not found"):
        vidinfer.detect(VIDEO, model=missing)
    with pytest.raises(vidinfer.ModelError, match="model file not found"):
        vidinfer.Detector(missing)


def test_a_model_that_is_not_onnx_raises_model_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage" * 64)
    with pytest.raises(vidinfer.ModelError, match="cannot load model") as e:
        vidinfer.detect(VIDEO, model=str(bad))
    assert isinstance(e.value, vidinfer.VidinferError)


def test_bad_values_raise_value_error():
    with pytest.raises(ValueError, match="ep"):
        vidinfer.detect(VIDEO, ep="nope")
    with pytest.raises(ValueError, match="need track=True"):
        vidinfer.detect(VIDEO, count_lines=[(0, 0, 10, 10)])
    with pytest.raises(ValueError, match="images"):
        vidinfer.Detector()(np.zeros((4, 4), np.uint8))


def wait_for_threads(baseline, timeout=10.0):
    end = time.monotonic() + timeout
    while threads() > baseline and time.monotonic() < end:
        time.sleep(0.05)
    return threads()


def test_breaking_out_early_frees_every_thread():
    gc.collect()
    baseline = threads()
    for r in vidinfer.detect(VIDEO):
        assert threads() > baseline  # the pipeline's threads are running
        if r.frame == 5:
            break
    gc.collect()
    # The iterator's drop joins the run's threads before it returns.
    assert threads() == baseline


def test_close_and_context_manager_free_every_thread():
    baseline = threads()
    with vidinfer.detect(VIDEO) as it:
        next(it)
    assert threads() == baseline
    it = vidinfer.detect(VIDEO)
    next(it)
    it.close()
    assert threads() == baseline
    with pytest.raises(StopIteration):
        next(it)


def test_keyboard_interrupt_stops_the_iteration_cleanly():
    baseline = threads()
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    seen = 0
    # Python leaves SIGINT ignored when it starts ignored (a shell's `cmd &` without job
    # control does that): Ctrl-C's handler, as an interactive Python has it, for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            timer.start()
            for _ in vidinfer.detect(VIDEO):
                seen += 1
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
    gc.collect()
    assert seen > 0
    assert wait_for_threads(baseline) == baseline


def test_to_supervision():
    import supervision as sv  # installed by tools/python_test
    r = next(r for r in vidinfer.detect(VIDEO, max_frames=10) if len(r))
    d = vidinfer.to_supervision(r)
    assert isinstance(d, sv.Detections) and len(d) == len(r)
    np.testing.assert_array_equal(d.xyxy, r.boxes)
