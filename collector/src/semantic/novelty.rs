//! How far each newly embedded template is from every template embedded before it, for
//! the alert rules' `novelty` kind.
//!
//! The alert engine asks with its lock held, so answers come from memory: each
//! template's vector is kept normalised here, and a new one is compared with all the
//! others once, when its embedding arrives (a dot product each; 50,000 templates of
//! 384 dimensions cost about 20 million multiplications per new template). With the
//! local vector file, the index is seeded from it at start; with Qdrant it starts
//! empty and fills as templates are embedded, so right after a restart a new template
//! is compared only with those embedded since, and may look more novel than it is.

use crate::alerts::NoveltyScorer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct NoveltyIndex {
    vectors: Vec<(u64, Vec<f32>)>,
    best: HashMap<u64, f64>,
}

impl NoveltyIndex {
    /// Adds a template's vector, recording its best similarity to those before it.
    pub fn add(&mut self, key: u64, vector: &[f32]) {
        if self.best.contains_key(&key) {
            return;
        }
        let normalised = normalise(vector);
        let best = self
            .vectors
            .iter()
            .map(|(_, other)| dot(&normalised, other))
            .fold(None, |best: Option<f64>, score| {
                Some(best.map_or(score, |b| b.max(score)))
            });
        self.best.insert(key, best.unwrap_or(0.0));
        self.vectors.push((key, normalised));
    }

    pub fn best_similarity(&self, key: u64) -> Option<f64> {
        self.best.get(&key).copied()
    }
}

fn normalise(vector: &[f32]) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        return vector.to_vec();
    }
    vector.iter().map(|x| x / norm).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum()
}

/// The alert engine's view of the index.
pub struct SemanticNovelty(pub Arc<Mutex<NoveltyIndex>>);

impl NoveltyScorer for SemanticNovelty {
    fn best_similarity(&self, template_id: &str, _template_text: &str) -> Option<f64> {
        let key = u64::from_str_radix(template_id, 16).ok()?;
        self.0.lock().ok()?.best_similarity(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_template_is_scored_against_those_before_it() {
        let mut index = NoveltyIndex::default();
        index.add(1, &[1.0, 0.0]);
        index.add(2, &[2.0, 0.1]);
        index.add(3, &[0.0, 1.0]);
        assert_eq!(index.best_similarity(1), Some(0.0));
        assert!(index.best_similarity(2).unwrap() > 0.99);
        assert!(index.best_similarity(3).unwrap() < 0.1);
        index.add(3, &[1.0, 0.0]);
        assert!(index.best_similarity(3).unwrap() < 0.1, "first score kept");
        let scorer = SemanticNovelty(Arc::new(Mutex::new(index)));
        assert!(scorer.best_similarity("0000000000000002", "").unwrap() > 0.99);
        assert_eq!(scorer.best_similarity("zz", ""), None);
    }
}
