//! What the binary prints about a detect run: a line per input (its error, or its outputs),
//! the summary line, and with `--stats` where the time went.

use vidinfer::{
    error::chain,
    pipeline::{InputReport, RunReport},
    sys::cores,
};

/// Notes on what could not be decoded, for a person.
fn notes(i: &InputReport) -> String {
    let mut notes = Vec::new();
    if i.issues.corrupt_packets + i.issues.rejected_packets > 0 {
        notes.push(format!(
            "skipped {} corrupt and {} undecodable packets",
            i.issues.corrupt_packets, i.issues.rejected_packets
        ));
    }
    let (lost, leading) = (i.issues.undecodable_packets, i.issues.undecodable_leading);
    if lost > 0 {
        let before = match leading {
            0 => String::new(),
            n if n == lost => ", all before the first frame".into(),
            n => format!(", {n} of them before the first frame"),
        };
        notes.push(format!("{lost} packets gave no frame{before}"));
    }
    if i.issues.damaged_frames > 0 {
        notes.push(format!(
            "{} frames decoded with errors concealed",
            i.issues.damaged_frames
        ));
    }
    if let Some(n) = i
        .expected_frames
        .filter(|&n| i.frames < n && !i.interrupted && i.error.is_none())
    {
        notes.push(format!(
            "decoded {} of {n} frames the container lists",
            i.frames
        ));
    }
    if let Some((w, h)) = i.annotated_scaled_to {
        notes.push(format!(
            "annotated MP4 scaled down to {w}x{h}: H.264 encodes at most {} pixels a side",
            vidinfer::sink::video::MAX_SIDE
        ));
    }
    if let Some(e) = &i.issues.read_error {
        notes.push(format!("reading stopped early: {e}"));
    }
    if i.interrupted {
        notes.push("interrupted".into());
    }
    if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    }
}

/// With tracking: the number of tracks, for the input's line.
fn tracks_note(i: &InputReport) -> String {
    match &i.tracking {
        Some(t) => format!(
            ", {} track{}",
            t.tracks,
            if t.tracks == 1 { "" } else { "s" }
        ),
        None => String::new(),
    }
}

/// With count lines: a line per count line, its crossings in each direction, per class.
fn print_counts(i: &InputReport) {
    for l in i.tracking.iter().flat_map(|t| &t.lines) {
        let classes: Vec<String> = l
            .classes
            .iter()
            .map(|c| format!("{} {} in, {} out", c.label, c.inward, c.outward))
            .collect();
        let by_class = if classes.is_empty() {
            String::new()
        } else {
            format!(" ({})", classes.join("; "))
        };
        eprintln!(
            "  line {}: {} in, {} out{by_class}",
            l.name, l.inward, l.outward
        );
    }
}

/// With zones: a line per zone, its entries and exits, the tracks inside at the end and the
/// dwell of those that left.
fn print_zones(i: &InputReport) {
    for z in i.tracking.iter().flat_map(|t| &t.zones) {
        let dwell = match (z.dwell_s_mean, z.dwell_s_max) {
            (Some(mean), Some(max)) => format!(", dwell {mean:.1} s mean, {max:.1} s longest"),
            _ => String::new(),
        };
        let classes: Vec<String> = (z.classes.iter())
            .map(|c| format!("{} {} entered", c.label, c.entered))
            .collect();
        let by_class = if classes.len() > 1 {
            format!(" ({})", classes.join("; "))
        } else {
            String::new()
        };
        eprintln!(
            "  zone {}: {} entered, {} left, {} inside at the end{dwell}{by_class}",
            z.name, z.entered, z.exited, z.inside_at_end
        );
    }
}

/// One line per input, then the summary line. Errors name their file already.
pub fn print_run(r: &RunReport, quiet: bool) {
    for i in &r.inputs {
        match &i.error {
            Some(e) => eprintln!("error: {}{}", chain(e), notes(i)),
            None if i.skipped.is_some() && !quiet => {
                if let Some(why) = &i.skipped {
                    eprintln!("{}: skipped: {why}", i.path.display());
                }
            }
            None if !quiet => {
                let outs = shown_outputs(&i.outputs);
                eprintln!(
                    "{}: {} frames, {} detections{} → {}{}",
                    i.path.display(),
                    i.frames,
                    i.detections,
                    tracks_note(i),
                    outs.join(", "),
                    notes(i)
                );
                print_counts(i);
                print_zones(i);
            }
            None => {}
        }
    }
    if !quiet {
        let skipped = r.inputs.iter().filter(|i| i.skipped.is_some()).count();
        let streams = match r.streams.len() {
            0 | 1 => String::new(),
            n => format!(", {n} inputs decoded side by side"),
        };
        eprintln!(
            "done: {} frames in {:.2} s ({:.1} fps), {} detections, {} of {} inputs ok{}, EP {} {}, batch {}, {} inference worker{}{streams}",
            r.frames,
            r.elapsed.as_secs_f64(),
            r.fps,
            r.detections,
            r.inputs.len() - r.failed() - skipped,
            r.inputs.len(),
            if skipped > 0 { format!(" ({skipped} skipped)") } else { String::new() },
            r.ep,
            r.precision,
            r.batch,
            r.workers,
            if r.workers == 1 { "" } else { "s" }
        );
    }
    if r.interrupted {
        let finished = r.inputs.iter().filter(|i| i.ok() && !i.interrupted).count();
        let cut = r
            .inputs
            .iter()
            .filter(|i| i.interrupted && !i.outputs.is_empty())
            .count();
        let not_started = r
            .inputs
            .iter()
            .filter(|i| i.interrupted && i.outputs.is_empty())
            .count();
        eprintln!(
            "stopped early: {finished} inputs finished, {cut} cut short with their outputs committed up to where they stopped (no done marker, a rerun redoes them), {not_started} not started"
        );
    }
}

/// `--stats`: memory, CPU per frame, per-stage times and queue depths.
pub fn print_stats(r: &RunReport) {
    if let Some(kib) = r.peak_rss_kib {
        eprintln!("peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    if let (Some(ms), Some(s)) = (r.cpu_ms_per_frame, r.cpu_s) {
        eprintln!(
            "CPU: {ms:.2} ms per frame, {:.2} cores busy on average of {}",
            s / r.elapsed.as_secs_f64().max(1e-9),
            cores()
        );
    }
    eprintln!("stage        items   busy s   ms/item   thread CPU ms/item");
    for s in &r.stages {
        eprintln!(
            "{:<12} {:>6} {:>8.2} {:>9.3} {:>20.3}",
            s.name, s.items, s.busy_s, s.ms_per_item, s.cpu_ms_per_item
        );
    }
    if r.streams.len() > 1 {
        print_streams(r);
    }
    eprintln!(
        "queue                 cap  items  mean depth  max  producer blocked s  consumer waited s"
    );
    for q in &r.queues {
        eprintln!(
            "{:<20} {:>4} {:>6} {:>11.2} {:>4} {:>19.2} {:>18.2}",
            q.name,
            q.capacity,
            q.items,
            q.mean_depth,
            q.max_depth,
            q.producer_blocked_s,
            q.consumer_waited_s
        );
    }
}

/// `--stats` with several streams: what each decoder did and how full its queue was (a
/// decoder that fills the shared batch itself has no queue: `-`).
fn print_streams(r: &RunReport) {
    eprintln!(
        "stream  inputs  frames  decode s  ms/frame  thread CPU ms/frame  queue cap  mean depth  max  blocked s"
    );
    for s in &r.streams {
        let queue = if s.fills_batches {
            format!("{:>10} {:>11} {:>4}", "-", "-", "-")
        } else {
            format!(
                "{:>10} {:>11.2} {:>4}",
                s.queue_capacity, s.mean_depth, s.max_depth
            )
        };
        eprintln!(
            "{:<7} {:>6} {:>7} {:>9.2} {:>9.3} {:>20.3} {queue} {:>10.2}",
            s.stream,
            s.inputs,
            s.frames,
            s.decode_s,
            s.decode_ms_per_frame,
            s.cpu_ms_per_frame,
            s.blocked_s
        );
    }
    if r.streams.iter().any(|s| s.fills_batches) {
        eprintln!(
            "(each decoder preprocessed its own frames into the shared batch: that CPU is in its thread CPU, not preprocess's; blocked s: waiting for the batch)"
        );
    }
}

/// The outputs as the summary line names them: files, and a snapshot folder once with its
/// count (`out/clip.snapshots/ (84 JPEGs)`) rather than every JPEG in it.
fn shown_outputs(outputs: &[std::path::PathBuf]) -> Vec<String> {
    let mut shown: Vec<String> = Vec::new();
    let mut folders: Vec<(String, usize)> = Vec::new();
    for p in outputs {
        let folder = p
            .parent()
            .filter(|d| d.extension().is_some_and(|e| e == "snapshots"));
        match folder {
            Some(d) => {
                let d = format!("{}/", d.display());
                match folders.iter_mut().find(|(f, _)| *f == d) {
                    Some((_, n)) => *n += 1,
                    None => folders.push((d, 1)),
                }
            }
            None => shown.push(p.display().to_string()),
        }
    }
    shown.extend(folders.into_iter().map(|(d, n)| format!("{d} ({n} JPEGs)")));
    shown
}
