//! How long each step holds: fractions of the duration, fixed seconds, and
//! looped steps sharing what is left.

use ktstr_plan::{Hold, Step};

/// Seconds each step holds, and the seconds left after the last step.
pub fn holds(steps: &[Step], duration_s: f64) -> (Vec<f64>, f64) {
    let fixed: f64 = steps
        .iter()
        .map(|s| match s.hold {
            Hold::Frac { f } => f * duration_s,
            Hold::Fixed { secs } => secs,
            Hold::Looped { .. } => 0.0,
        })
        .sum();
    let loops: u32 = steps
        .iter()
        .map(|s| match s.hold {
            Hold::Looped { times } => times,
            _ => 0,
        })
        .sum();
    let left = (duration_s - fixed).max(0.0);
    let per_loop = if loops > 0 {
        left / f64::from(loops)
    } else {
        0.0
    };
    let each = steps
        .iter()
        .map(|s| match s.hold {
            Hold::Frac { f } => f * duration_s,
            Hold::Fixed { secs } => secs,
            Hold::Looped { times } => per_loop * f64::from(times),
        })
        .collect();
    let tail = if loops > 0 { 0.0 } else { left };
    (each, tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ktstr_plan::SourcePos;

    fn step(hold: Hold) -> Step {
        Step {
            ops: vec![],
            hold,
            at: SourcePos::default(),
        }
    }

    #[test]
    fn holds_add_up_to_the_duration() {
        let steps = [
            step(Hold::Frac { f: 0.25 }),
            step(Hold::Fixed { secs: 1.0 }),
            step(Hold::Looped { times: 2 }),
            step(Hold::Looped { times: 1 }),
        ];
        let (each, tail) = holds(&steps, 10.0);
        assert_eq!(each, vec![2.5, 1.0, 13.0 / 3.0, 6.5 / 3.0]);
        assert_eq!(tail, 0.0);
        let (each, tail) = holds(&[step(Hold::Frac { f: 0.5 })], 10.0);
        assert_eq!((each, tail), (vec![5.0], 5.0));
    }
}
