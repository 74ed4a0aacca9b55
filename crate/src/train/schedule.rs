//! The learning rate over a run: linear warm-up from 0 to the peak, then linear decay to 0
//! at the last step (the schedule BERT fine-tuning and the card's recipe use).

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearSchedule {
    pub peak: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

impl LinearSchedule {
    /// The learning rate of optimizer step `step` (0-based).
    pub fn at(&self, step: usize) -> f64 {
        let step = step as f64 + 1.0;
        let warmup = self.warmup_steps as f64;
        let total = self.total_steps.max(1) as f64;
        if step <= warmup {
            self.peak * step / warmup
        } else {
            self.peak * ((total - step + 1.0) / (total - warmup).max(1.0)).clamp(0.0, 1.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_to_the_last_step() {
        let s = LinearSchedule {
            peak: 1.0,
            warmup_steps: 2,
            total_steps: 6,
        };
        let lrs: Vec<f64> = (0..6).map(|i| s.at(i)).collect();
        assert_eq!(lrs, [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]);
        let flat = LinearSchedule {
            peak: 1.0,
            warmup_steps: 0,
            total_steps: 4,
        };
        assert_eq!(flat.at(0), 1.0);
        assert_eq!(flat.at(3), 0.25);
    }
}
