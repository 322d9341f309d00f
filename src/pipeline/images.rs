//! The pipeline's per-frame work for pictures already in memory: an [`ImageDetector`] runs
//! the same preprocessing (the exact kernel: RGB in), inference and post-processing (score
//! filter, per-class NMS, boxes in the picture's pixels) as a `run` does, one call at a time
//! on the caller's thread, without decoding or threads. For a language binding's "detect on
//! these arrays" or an embedding program with its own frames.

use super::postprocess_stage::detect_in_frame;
use crate::{
    error::{Error, FrameError, Result},
    infer::Detector,
    postprocess::{Detection, PostprocessConfig, Postprocessor},
    preprocess::{Resizer, RgbImage, Tensor},
};

pub struct ImageDetector {
    detector: Detector,
    pp: Postprocessor,
    /// Images per inference call (the model's fixed batch if it has one).
    batch: usize,
    tensor: Tensor,
    /// The resize plan of the last picture size seen.
    resizer: Option<Resizer>,
}

impl ImageDetector {
    /// `batch` images go to the model at a time (a model with a fixed batch size gets its own,
    /// padded with blank images).
    pub fn new(detector: Detector, post: PostprocessConfig, batch: usize) -> Self {
        let batch = detector.fixed_batch().unwrap_or(batch.max(1));
        let tensor = Tensor::new(detector.spec().dtype);
        ImageDetector {
            detector,
            pp: Postprocessor::new(post),
            batch,
            tensor,
            resizer: None,
        }
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Detections for each image, in order, boxes in the image's pixels. An image the kernel
    /// cannot take (too short a buffer, an empty size) is an error naming its position.
    pub fn detect(&mut self, images: &[RgbImage<'_>]) -> Result<Vec<Vec<Detection>>> {
        let mut out = Vec::with_capacity(images.len());
        for (c, chunk) in images.chunks(self.batch).enumerate() {
            out.extend(self.detect_batch(chunk, c * self.batch)?);
        }
        Ok(out)
    }

    fn detect_batch(
        &mut self,
        images: &[RgbImage<'_>],
        first: usize,
    ) -> Result<Vec<Vec<Detection>>> {
        let spec = *self.detector.spec();
        let slot = spec.slot_len();
        let run_n = if self.detector.fixed_batch().is_some() {
            self.batch
        } else {
            images.len()
        };
        self.tensor.pad_to(images.len() * slot, run_n * slot);
        for (i, img) in images.iter().enumerate() {
            let bad = |source: FrameError| Error::Preprocess {
                path: "<image>".into(),
                frame: (first + i) as u64,
                source,
            };
            let plan = match &mut self.resizer {
                Some(r) if r.source_size() == (img.width, img.height) => r,
                held => held
                    .insert(Resizer::new(spec, img.width, img.height).map_err(|e| bad(e.into()))?),
            };
            plan.run_into(img, self.tensor.slot(i * slot..(i + 1) * slot))
                .map_err(|e| bad(e.into()))?;
        }
        let output = self.detector.run(&self.tensor, run_n)?;
        Ok(images
            .iter()
            .enumerate()
            .map(|(i, img)| {
                detect_in_frame(&mut self.pp, &spec, (img.width, img.height), &output, i)
            })
            .collect())
    }
}
