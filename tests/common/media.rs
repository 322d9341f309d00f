//! Media helpers for the live-source tests: H.264 clips cut and looped with ffmpeg, and frame
//! counts read with ffprobe (bounded in time).
#![allow(dead_code)]

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use super::servers::*;

// ------------------------------------------------------------------ media

/// Cuts `seconds` of `src` into `out` as H.264 (libx264, no B-frames, a keyframe every 10
/// frames, yuv420p, no audio): what the RTSP server and `-c copy` MPEG-TS need. The container
/// follows `out`'s extension (.mp4, .mkv, .ts). Returns `out`.
pub fn h264_clip(src: &Path, seconds: f64, out: &Path) -> PathBuf {
    let t = format!("{seconds}");
    let args: [&OsStr; 16] = [
        "-i".as_ref(),
        src.as_os_str(),
        "-t".as_ref(),
        t.as_ref(),
        "-an".as_ref(),
        "-c:v".as_ref(),
        "libx264".as_ref(),
        "-preset".as_ref(),
        "veryfast".as_ref(),
        "-bf".as_ref(),
        "0".as_ref(),
        "-g".as_ref(),
        "10".as_ref(),
        "-pix_fmt".as_ref(),
        "yuv420p".as_ref(),
        out.as_os_str(),
    ];
    super::ffmpeg(args);
    out.to_path_buf()
}

/// `src` played `times` times in a row into `out`, without re-encoding (timestamps continue):
/// a long file for long runs, since the RTSP server cannot loop. Returns `out`.
pub fn looped(src: &Path, times: u32, out: &Path) -> PathBuf {
    let n = times.saturating_sub(1).to_string();
    let args: [&OsStr; 7] = [
        "-stream_loop".as_ref(),
        n.as_ref(),
        "-i".as_ref(),
        src.as_os_str(),
        "-c".as_ref(),
        "copy".as_ref(),
        out.as_os_str(),
    ];
    super::ffmpeg(args);
    out.to_path_buf()
}

/// Frames of the first video stream that ffprobe decodes from `url` (any FFmpeg input),
/// `input_opts` going before the input (e.g. `["-rtsp_transport", "tcp"]`). Killed after
/// `timeout` (a panic). Returns (frames, ffprobe's exit status and stderr).
pub fn ffprobe_url_frames(url: &str, input_opts: &[&str], timeout: Duration) -> (u64, String) {
    let (n, err) = try_ffprobe_url_frames(url, input_opts, timeout);
    let n = n.unwrap_or_else(|| panic!("ffprobe {url}: no frame count: {err}"));
    (n, err)
}

/// [`ffprobe_url_frames`] that returns `None` when ffprobe prints no count (it can exit 0
/// without one, e.g. when the server died while it probed).
pub fn try_ffprobe_url_frames(
    url: &str,
    input_opts: &[&str],
    timeout: Duration,
) -> (Option<u64>, String) {
    let mut c = Command::new("ffprobe");
    c.args(["-v", "error"])
        .args(input_opts)
        .args(super::FFPROBE_COUNT_FRAMES)
        .arg(url);
    let t = Instant::now();
    let o = output_timeout(&mut c, timeout);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let n = parse_frame_count(&String::from_utf8_lossy(&o.stdout));
    eprintln!(
        "ffprobe {} {url}: {n:?} frames in {:.1} s ({})",
        input_opts.join(" "),
        t.elapsed().as_secs_f64(),
        o.status
    );
    (n, format!("{}; {err}", o.status))
}

/// The count in ffprobe's `-show_entries stream=nb_read_frames -of csv=p=0` output: its first
/// non-empty line (MPEG-TS inputs print the stream once more, under its program).
pub fn parse_frame_count(out: &str) -> Option<u64> {
    out.lines()
        .map(|l| l.trim().trim_end_matches(','))
        .find(|l| !l.is_empty())?
        .parse()
        .ok()
}
