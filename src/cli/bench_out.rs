//! How `vidinfer bench` shows its results: a table on stdout, and the same records as CSV
//! (the csv crate, from the serde record), JSON and an SVG plot of fps against batch size.

use std::path::Path;

use anyhow::Context as _;
use plotters::prelude::*;
use vidinfer::{
    bench::{slower_than_fp32, BenchPoint},
    output::write_atomic,
};

pub fn table(points: &[BenchPoint]) -> String {
    let mut s = String::from(
        "ep        prec wk thr batch stride streams track  model fps  e2e fps  e2e/model  CPU ms/frame model/e2e  frame lat p50/p95/p99 ms  batch ms p50/p95/p99  decode  prep  infer  post  sink (ms/frame)  peak RSS MiB\n",
    );
    for p in points {
        s.push_str(&format!(
            "{:<9} {:<4} {:>2} {:>3} {:>5} {:>6} {:>7} {:>5} {:>10.1} {:>8.1} {:>10.3}  {:>11.2}/{:<11.2}  {:>7.1}/{:>6.1}/{:>6.1}       {:>6.1}/{:>6.1}/{:>6.1}  {:>6.2} {:>5.2} {:>6.2} {:>5.2} {:>5.2}  {:>12.1}\n",
            p.ep,
            p.precision,
            p.workers,
            p.threads,
            p.batch,
            p.stride,
            p.streams,
            if p.track { "on" } else { "off" },
            p.model_fps,
            p.e2e_fps,
            p.e2e_vs_model,
            p.model_cpu_ms,
            p.e2e_cpu_ms,
            p.frame_p50_ms,
            p.frame_p95_ms,
            p.frame_p99_ms,
            p.batch_p50_ms,
            p.batch_p95_ms,
            p.batch_p99_ms,
            p.decode_ms,
            p.preprocess_ms,
            p.infer_ms,
            p.postprocess_ms,
            p.sinks_ms,
            p.peak_rss_mib
        ));
    }
    s
}

/// A line for each measured point where reduced precision ran slower than fp32 with the same
/// settings: it does not pay with that provider on this CPU (say, int8 on ONNX Runtime's CPU
/// provider without VNNI kernels for the model's QDQ pattern).
pub fn slower_notes(points: &[BenchPoint]) -> Vec<String> {
    slower_than_fp32(points)
        .iter()
        .map(|s| {
            let (r, f) = (&s.reduced, &s.fp32);
            format!(
                "note: {} on {} runs slower than fp32 on this CPU: {:.1} vs {:.1} fps end to end ({} worker(s) x {} thread(s), batch {}); fp32, or another provider, is faster here",
                r.precision, r.ep, r.e2e_fps, f.e2e_fps, r.workers, r.threads, r.batch
            )
        })
        .collect()
}

pub fn write_csv(points: &[BenchPoint], path: &Path) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for p in points {
        w.serialize(p)?;
    }
    let bytes = w.into_inner().context("CSV buffer")?;
    write_atomic(path, &bytes)?;
    Ok(())
}

pub fn write_json(points: &[BenchPoint], path: &Path) -> anyhow::Result<()> {
    write_atomic(path, serde_json::to_string_pretty(points)?.as_bytes())?;
    Ok(())
}

/// SVG plot of fps against batch size: one end-to-end and one model-only line per EP,
/// precision, workers, threads, stride and tracking.
pub fn write_plot(points: &[BenchPoint], path: &Path) -> anyhow::Result<()> {
    let mut svg = String::new();
    draw(points, &mut svg).map_err(|e| anyhow::anyhow!("cannot draw the plot: {e}"))?;
    write_atomic(path, svg.as_bytes())?;
    Ok(())
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The plot's lines: the points of each provider, precision, workers x threads, stride,
/// stream count and tracking, named, in batch order.
fn series(points: &[BenchPoint]) -> Vec<(String, Vec<&BenchPoint>)> {
    let key = |p: &BenchPoint| {
        let (ep, prec) = (p.ep.name(), p.precision.name());
        (ep, prec, p.workers, p.threads, p.stride, p.streams, p.track)
    };
    let mut keys: Vec<_> = points.iter().map(key).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let (ep, prec, workers, threads, stride, streams, track) = &k;
            let mut name = format!("{ep} {prec} workers x threads={workers}x{threads}");
            if *stride > 1 {
                name.push_str(&format!(" stride {stride}"));
            }
            if *streams > 1 {
                name.push_str(&format!(" {streams} streams"));
            }
            if *track {
                name.push_str(" tracking");
            }
            (name, points.iter().filter(|p| key(p) == k).collect())
        })
        .collect()
}

fn draw(points: &[BenchPoint], svg: &mut String) -> DrawResult {
    let max_fps = points
        .iter()
        .map(|p| p.model_fps.max(p.e2e_fps))
        .fold(1.0, f64::max)
        * 1.15;
    let max_batch = points.iter().map(|p| p.batch).max().unwrap_or(1) as f64;
    let root = SVGBackend::with_string(svg, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "vidinfer bench: frames per second vs batch size",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0.5f64..max_batch * 1.5).log_scale(), 0f64..max_fps)?;
    chart
        .configure_mesh()
        .x_desc("batch size")
        .y_desc("frames / s")
        .draw()?;
    for (i, (name, series)) in series(points).into_iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let e2e: Vec<(f64, f64)> = series.iter().map(|p| (p.batch as f64, p.e2e_fps)).collect();
        let model: Vec<(f64, f64)> = series
            .iter()
            .map(|p| (p.batch as f64, p.model_fps))
            .collect();
        let solid = colour.stroke_width(2);
        chart
            .draw_series(LineSeries::new(e2e.clone(), solid))?
            .label(format!("{name} end-to-end"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], solid));
        chart.draw_series(e2e.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
        let dashed = colour.mix(0.5);
        chart
            .draw_series(LineSeries::new(model.clone(), dashed.stroke_width(1)))?
            .label(format!("{name} model only"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], dashed.stroke_width(1))
            });
        chart.draw_series(
            model
                .iter()
                .map(|&p| TriangleMarker::new(p, 4, dashed.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(batch: usize) -> BenchPoint {
        BenchPoint {
            ep: vidinfer::infer::EpKind::Cpu,
            precision: vidinfer::infer::Precision::Fp32,
            workers: 1,
            threads: 2,
            batch,
            stride: 1,
            streams: 2,
            inputs: 4,
            track: batch > 1,
            model_fps: 100.0,
            e2e_fps: 96.0,
            e2e_vs_model: 0.96,
            model_cpu_ms: 10.0,
            e2e_cpu_ms: 10.5,
            peak_rss_mib: 300.5,
            frames: 200,
            model_batch_p50_ms: 1.0,
            model_batch_p95_ms: 2.0,
            model_batch_p99_ms: 3.0,
            frame_p50_ms: 4.0,
            frame_p95_ms: 5.0,
            frame_p99_ms: 6.0,
            batch_p50_ms: 7.0,
            batch_p95_ms: 8.0,
            batch_p99_ms: 9.0,
            decode_ms: 0.5,
            preprocess_ms: 0.25,
            infer_ms: 9.5,
            postprocess_ms: 0.125,
            sinks_ms: 0.0625,
            repeats: 3,
            cpu: "Test CPU (AVX2)".into(),
        }
    }

    #[test]
    fn csv_and_json_come_from_one_record_and_read_back() {
        let dir = std::env::temp_dir().join(format!("vidinfer-bench-out-{}", std::process::id()));
        let points = vec![point(1), point(4)];
        write_csv(&points, &dir.join("b.csv")).unwrap();
        write_json(&points, &dir.join("b.json")).unwrap();
        let text = std::fs::read_to_string(dir.join("b.csv")).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(
            text.starts_with(
                "ep,precision,workers,threads,batch,stride,streams,inputs,track,model_fps,"
            ),
            "{text}"
        );
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let back: Vec<BenchPoint> = r.deserialize().collect::<Result<_, _>>().unwrap();
        assert_eq!(back, points);
        let json: Vec<BenchPoint> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("b.json")).unwrap()).unwrap();
        assert_eq!(json, points);
        write_plot(&points, &dir.join("b.svg")).unwrap();
        assert!(std::fs::read_to_string(dir.join("b.svg"))
            .unwrap()
            .contains("<svg"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
