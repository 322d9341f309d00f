//! Where frames come from: a file, a URL FFmpeg opens (RTSP, RTMP, HTTP(S) and HLS, TCP, UDP,
//! SRT), standard input (`-`) or a V4L2 camera (`/dev/videoN`). An input is named by a path
//! either way; this says which kind it is, which FFmpeg options open it, and what its
//! outputs are called.

use std::{
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    time::Duration,
};

/// What kind of input a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    File,
    /// `scheme://...`, the scheme in lower case.
    Url(String),
    /// `-`: standard input.
    Stdin,
    /// `/dev/video<N>`: a V4L2 camera.
    Camera,
}

/// Schemes whose streams have no end: they are reconnected when they drop.
const LIVE_SCHEMES: &[&str] = &["rtsp", "rtsps", "rtmp", "rtmps", "udp", "rtp", "tcp", "srt"];

impl SourceKind {
    pub fn of(path: &Path) -> SourceKind {
        let b = path.as_os_str().as_bytes();
        if b == b"-" {
            return SourceKind::Stdin;
        }
        if b.starts_with(b"/dev/video") {
            return SourceKind::Camera;
        }
        if let Some(i) = b.windows(3).position(|w| w == b"://") {
            let scheme = &b[..i];
            if !scheme.is_empty()
                && scheme
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
            {
                return SourceKind::Url(String::from_utf8_lossy(scheme).to_ascii_lowercase());
            }
        }
        SourceKind::File
    }

    /// A stream that runs at its own pace, whether read or not: frames may be dropped to keep
    /// up with it. HTTP(S) is live only when it has no duration (found when opened). Standard
    /// input is not: a pipe waits for its reader.
    pub fn is_live(&self) -> bool {
        match self {
            SourceKind::File | SourceKind::Stdin => false,
            SourceKind::Camera => true,
            SourceKind::Url(s) => LIVE_SCHEMES.contains(&s.as_str()),
        }
    }

    /// A source that can be opened again after it drops (network streams).
    pub fn can_reconnect(&self) -> bool {
        matches!(self, SourceKind::Url(_))
    }
}

/// How network inputs are opened.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// RTSP over TCP (`tcp`, the default: no lost packets behind firewalls) or `udp`.
    pub rtsp_transport: String,
    /// A source that sends nothing for this long fails (opening and reading).
    pub io_timeout: Duration,
    /// More FFmpeg options, passed as they are.
    pub extra: Vec<(String, String)>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            rtsp_transport: "tcp".into(),
            io_timeout: Duration::from_secs(10),
            extra: Vec::new(),
        }
    }
}

impl SourceOptions {
    /// FFmpeg's options for opening an input of this kind.
    pub fn ffmpeg_options(&self, kind: &SourceKind) -> Vec<(String, String)> {
        let us = self.io_timeout.as_micros().to_string();
        let mut v: Vec<(String, String)> = match kind {
            SourceKind::Url(s) if s.starts_with("rtsp") => vec![
                ("rtsp_transport".into(), self.rtsp_transport.clone()),
                ("timeout".into(), us),
            ],
            SourceKind::Url(s) if s == "udp" => vec![("timeout".into(), us)],
            SourceKind::Url(_) => vec![("rw_timeout".into(), us)],
            SourceKind::File | SourceKind::Stdin | SourceKind::Camera => Vec::new(),
        };
        v.extend(self.extra.iter().cloned());
        v
    }
}

/// What FFmpeg is asked to open for an input: `pipe:0` for standard input.
pub fn ffmpeg_name(path: &Path) -> PathBuf {
    match SourceKind::of(path) {
        SourceKind::Stdin => PathBuf::from("pipe:0"),
        _ => path.into(),
    }
}

/// A readable, filesystem-safe output stem for a non-file input: host and path of a URL
/// (`rtsp://cam.local:8554/front` → `cam.local_8554_front`), `stdin`, `video0`.
pub fn stream_stem(path: &Path) -> String {
    match SourceKind::of(path) {
        SourceKind::Stdin => "stdin".into(),
        SourceKind::Camera => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "camera".into()),
        _ => {
            let text = String::from_utf8_lossy(path.as_os_str().as_bytes()).into_owned();
            let rest = text.split_once("://").map_or(text.as_str(), |(_, r)| r);
            // Drop credentials and the query; keep host, port and path.
            let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
            let rest = rest.split(['?', '#']).next().unwrap_or(rest);
            let mut s: String = rest
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            while s.contains("__") {
                s = s.replace("__", "_");
            }
            let s = s.trim_matches('_').to_string();
            if s.is_empty() {
                "stream".into()
            } else {
                s
            }
        }
    }
}

/// True when `path` names an input that exists or need not exist on this filesystem (URLs,
/// standard input).
pub fn is_reachable(path: &Path) -> bool {
    !matches!(SourceKind::of(path), SourceKind::File) || path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_stems() {
        let k = |s: &str| SourceKind::of(Path::new(s));
        assert_eq!(k("-"), SourceKind::Stdin);
        assert_eq!(k("/dev/video0"), SourceKind::Camera);
        assert_eq!(k("RTSP://x/y"), SourceKind::Url("rtsp".into()));
        assert_eq!(k("clips/a.mp4"), SourceKind::File);
        assert_eq!(k("weird:name.mp4"), SourceKind::File);
        assert!(k("udp://127.0.0.1:5000").is_live() && !k("http://h/a.mp4").is_live());
        let st = |s: &str| stream_stem(Path::new(s));
        assert_eq!(
            st("rtsp://user:pw@cam.local:8554/front?x=1"),
            "cam.local_8554_front"
        );
        assert_eq!(
            st("http://127.0.0.1:8765/vtest.avi"),
            "127.0.0.1_8765_vtest.avi"
        );
        assert_eq!(st("-"), "stdin");
        assert_eq!(st("/dev/video2"), "video2");
    }

    #[test]
    fn network_options_have_timeouts_and_rtsp_over_tcp() {
        let o = SourceOptions {
            extra: vec![("probesize".into(), "32".into())],
            ..SourceOptions::default()
        };
        let rtsp = o.ffmpeg_options(&SourceKind::Url("rtsp".into()));
        assert!(rtsp.contains(&("rtsp_transport".into(), "tcp".into())));
        assert!(rtsp.contains(&("timeout".into(), "10000000".into())));
        assert!(rtsp.contains(&("probesize".into(), "32".into())));
        let http = o.ffmpeg_options(&SourceKind::Url("http".into()));
        assert!(http.contains(&("rw_timeout".into(), "10000000".into())));
        assert_eq!(o.ffmpeg_options(&SourceKind::File).len(), 1);
    }
}
