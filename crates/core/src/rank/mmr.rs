//! Diversity by maximal marginal relevance (Carbonell & Goldstein, 1998):
//! repeatedly take the group maximising
//! `λ · score/max score − (1 − λ) · max cos(group, already taken)`,
//! with `λ = 1 − diversity`, so one topic cannot fill the context.

use super::collapse::Group;
use super::score::dot;
use super::Candidate;

/// The groups in MMR order (indexes into `groups`). `diversity == 0` keeps
/// the score order.
pub fn order(groups: &[Group], candidates: &[Candidate], diversity: f32) -> Vec<usize> {
    if diversity <= 0.0 || groups.len() < 3 {
        return (0..groups.len()).collect();
    }
    let lambda = 1.0 - diversity;
    let max_score = groups.iter().map(|g| g.score).fold(f32::MIN_POSITIVE, f32::max);
    let vector = |g: usize| candidates[groups[g].latest()].vector.as_slice();
    let mut taken: Vec<usize> = Vec::with_capacity(groups.len());
    // Highest similarity of each remaining group to anything taken so far.
    let mut similarity = vec![0.0f32; groups.len()];
    let mut left: Vec<usize> = (0..groups.len()).collect();
    while !left.is_empty() {
        let (pos, _) = left
            .iter()
            .enumerate()
            .map(|(pos, &g)| (pos, lambda * groups[g].score / max_score - (1.0 - lambda) * similarity[g]))
            // `left` stays in score order, so ties go to the better score.
            .fold((0, f32::NEG_INFINITY), |best, cur| if cur.1 > best.1 { cur } else { best });
        let g = left.remove(pos);
        taken.push(g);
        for &other in &left {
            similarity[other] = similarity[other].max(dot(vector(g), vector(other)));
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventRecord;

    fn candidate(vector: Vec<f32>) -> Candidate {
        Candidate {
            point_id: String::new(),
            record: EventRecord {
                event: Default::default(),
                text: String::new(),
                ingested_at: 0,
                content_hash: String::new(),
                injection_score: None,
                injection_head: None,
            },
            vector,
            dense_rank: None,
            sparse_rank: None,
            sparse_score: None,
            consent_version: 1,
        }
    }

    #[test]
    fn near_duplicates_give_way_to_another_topic() {
        // Two near-identical top groups and a different, slightly weaker one.
        let cands = vec![candidate(vec![1.0, 0.0]), candidate(vec![0.999, 0.0447]), candidate(vec![0.0, 1.0])];
        let groups: Vec<Group> = [1.0, 0.95, 0.8]
            .iter()
            .enumerate()
            .map(|(i, &score)| Group { members: vec![i], score, note: None })
            .collect();
        assert_eq!(order(&groups, &cands, 0.0), vec![0, 1, 2], "no diversity: score order");
        assert_eq!(order(&groups, &cands, 0.3), vec![0, 2, 1], "the other topic moves up");
    }
}
