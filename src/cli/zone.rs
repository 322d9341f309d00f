//! `--zone NAME:X1,Y1;X2,Y2;...[;classes=A,B]`: the value as given, checked as a polygon
//! when it is parsed (a usage error names what is wrong with it).

/// One `--zone` as given: its classes are named, resolved against the labels by the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneArg {
    pub name: String,
    pub points: Vec<(f32, f32)>,
    pub classes: Vec<String>,
}

/// `NAME:X1,Y1;X2,Y2;...[;classes=A,B]`: a name, then at least 3 points of a polygon that
/// does not cross itself, then optionally the classes it counts.
pub fn zone(s: &str) -> Result<ZoneArg, String> {
    let form = "NAME:X1,Y1;X2,Y2;X3,Y3...[;classes=A,B]";
    let Some((name, rest)) = s.split_once(':') else {
        return Err(format!(
            "'{s}' is not {form}: a name, a colon, then the points"
        ));
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("the zone's name before the ':' is empty ({form})"));
    }
    let (mut points, mut classes) = (Vec::new(), Vec::new());
    let parts: Vec<&str> = rest.split(';').map(str::trim).collect();
    for (i, part) in parts.iter().enumerate() {
        if let Some(list) = part.strip_prefix("classes=") {
            if i + 1 != parts.len() {
                return Err(format!("zone '{name}': classes= comes last ({form})"));
            }
            classes = list.split(',').map(|c| c.trim().to_string()).collect();
            if classes.iter().any(String::is_empty) {
                return Err(format!("zone '{name}': an empty class name in '{part}'"));
            }
            continue;
        }
        let xy: Vec<Result<f32, _>> = part.split(',').map(|v| v.trim().parse::<f32>()).collect();
        match xy.as_slice() {
            [Ok(x), Ok(y)] => points.push((*x, *y)),
            _ => return Err(format!("zone '{name}': point '{part}' is not X,Y ({form})")),
        }
    }
    vidinfer::track::Zone::new(name, &points, Vec::new()).map_err(|e| e.to_string())?;
    Ok(ZoneArg {
        name: name.to_string(),
        points,
        classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_parse_and_refuse_what_cannot_count() {
        let z = zone(" door : 0,0; 100,-20 ;100.5,30;0,50;classes=person, stop sign").unwrap();
        assert_eq!(z.name, "door");
        assert_eq!(
            z.points,
            [(0.0, 0.0), (100.0, -20.0), (100.5, 30.0), (0.0, 50.0)]
        );
        assert_eq!(z.classes, ["person", "stop sign"]);
        assert!(zone("a:0,0;9,0;9,9").unwrap().classes.is_empty());
        for (bad, why) in [
            ("0,0;9,0;9,9", "is not NAME:"),
            (":0,0;9,0;9,9", "name before the ':' is empty"),
            ("a:0,0;9,0", "needs at least 3"),
            ("a:0,0;9,0;9", "point '9' is not X,Y"),
            ("a:0,0;9,0;x,9", "point 'x,9' is not X,Y"),
            ("a:0,0;9,0;9,9;", "point '' is not X,Y"),
            ("a:0,0;9,0;classes=person;9,9", "classes= comes last"),
            ("a:0,0;9,0;9,9;classes=person,", "an empty class name"),
            ("a:0,0;9,0;9,inf", "not a finite number"),
            ("a:0,0;9,9;9,0;0,9", "crosses itself: edge 1 and edge 3"),
            ("a:0,0;5,5;9,9", "no area"),
        ] {
            let err = zone(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
