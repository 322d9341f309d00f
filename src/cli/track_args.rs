//! `--track`'s flags: track lifetimes, count lines and zones.

use clap::Args;

use super::zone::{zone, ZoneArg};

/// Tracking settings of `detect` and `bench` (each has its own `--track`).
#[derive(Args, Debug)]
pub struct TrackArgs {
    /// A track not seen for this many seconds of video ends; an object seen again sooner
    /// (after an occlusion) keeps its id. Stream time: frame rate and --stride change nothing.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = track_seconds, requires = "track")]
    pub track_lost_s: f64,
    /// A new track gets its id only once seen over this many seconds (and on 2 frames).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0, value_parser = track_seconds, requires = "track")]
    pub track_confirm_s: f64,
    /// Count tracked objects whose feet (box bottom centre) cross the segment from (X1,Y1) to
    /// (X2,Y2), in frame pixels, per direction and class (repeatable). "in" is crossing from
    /// the left of X1,Y1 → X2,Y2 to its right as seen on screen; NAME defaults to line1, line2...
    #[arg(long, value_name = "X1,Y1,X2,Y2[,NAME]", value_parser = count_line, requires = "track", allow_hyphen_values = true)]
    pub count_line: Vec<CountLineArg>,
    /// Follow tracked objects in and out of the polygon NAME (its points in order around it,
    /// frame pixels; concave is fine, crossing itself is not; it may reach past the frame): an
    /// object is in it when its feet (box bottom centre) are, edges included; classes= counts
    /// only those. Occupancy, enter/exit events and dwell times in the JSONL and tracks file.
    #[arg(long, value_name = "NAME:X1,Y1;X2,Y2;X3,Y3...[;classes=A,B]", value_parser = zone, requires = "track", allow_hyphen_values = true)]
    pub zone: Vec<ZoneArg>,
    /// An object enters a zone once seen inside it for this many seconds of video, and leaves
    /// once seen outside for as long (stream time: frame rate and --stride change nothing).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.3, value_parser = track_seconds, requires = "zone")]
    pub zone_inertia_s: f64,
}

/// One `--count-line` as given; unnamed lines are named by the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct CountLineArg {
    pub a: (f32, f32),
    pub b: (f32, f32),
    pub name: Option<String>,
}

/// Seconds for a tracking setting: 0 to an hour.
fn track_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a number of seconds from 0 to 3600")),
    }
}

/// `X1,Y1,X2,Y2[,NAME]`: four frame-pixel coordinates (0 or more) of two distinct points.
pub fn count_line(s: &str) -> Result<CountLineArg, String> {
    let mut parts = s.splitn(5, ',');
    let mut v = [0f32; 4];
    for (i, slot) in v.iter_mut().enumerate() {
        let p = parts.next().map(str::trim).unwrap_or("");
        *slot = match p.parse::<f32>() {
            Ok(x) if x.is_finite() && x >= 0.0 => x,
            Ok(_) => return Err(format!("coordinate {} ('{p}') must be 0 or more frame pixels", i + 1)),
            Err(_) => return Err(format!("'{s}' is not X1,Y1,X2,Y2[,NAME] (4 numbers in frame pixels, then an optional name)")),
        };
    }
    let name = match parts.next().map(str::trim) {
        None => None,
        Some("") => return Err("the name after the 4th comma is empty".into()),
        Some(n) => Some(n.to_string()),
    };
    let [x1, y1, x2, y2] = v;
    let len = ((x2 - x1).powi(2) + (y2 - y1).powi(2)).sqrt();
    if len < 1.0 {
        return Err(format!(
            "the line's two ends ({x1},{y1}) and ({x2},{y2}) are {len} px apart: a count line needs two distinct points"
        ));
    }
    Ok(CountLineArg {
        a: (x1, y1),
        b: (x2, y2),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_lines_parse_and_refuse_what_cannot_count() {
        let l = count_line("0, 300,768,300.5").unwrap();
        assert_eq!((l.a, l.b, l.name), ((0.0, 300.0), (768.0, 300.5), None));
        let named = count_line("10,20,30,40,door, west").unwrap();
        assert_eq!(named.name.as_deref(), Some("door, west"));
        for (bad, why) in [
            ("10,20,30", "is not X1,Y1,X2,Y2"),
            ("10,20,30,x", "is not X1,Y1,X2,Y2"),
            ("10,20,30,40,", "name after the 4th comma is empty"),
            ("-1,20,30,40", "must be 0 or more"),
            ("10,20,inf,40", "must be 0 or more"),
            ("10,20,10,20", "two distinct points"),
            ("10,20,10.5,20", "two distinct points"),
        ] {
            let err = count_line(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
