//! The seeded benchmark workload shared by `listconranker bench` and the criterion benches:
//! lists of a query and passages with the lengths real ones have.

/// Seeded text generator (SplitMix64): Chinese passages built from common characters with
/// some English words and digits mixed in, of the lengths real queries and passages have
/// (queries ~10-30 tokens, passages ~60-250).
struct TextGenerator {
    state: u64,
    chars: Vec<char>,
}

const CHINESE: &str = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理府研质";
const ENGLISH: [&str; 16] = [
    "search", "model", "ranking", "query", "data", "web", "GPU", "health", "2024", "AI",
    "medicine", "the", "of", "and", "reranker", "list",
];

impl TextGenerator {
    fn new(seed: u64) -> Self {
        Self {
            state: seed,
            chars: CHINESE.chars().collect(),
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// One text of `min_tokens..=max_tokens` characters and words.
    fn text(&mut self, min_tokens: usize, max_tokens: usize) -> String {
        let tokens = min_tokens + self.below(max_tokens - min_tokens + 1);
        let mut text = String::new();
        for _ in 0..tokens {
            match self.below(20) {
                0 => {
                    text.push(' ');
                    text.push_str(ENGLISH[self.below(ENGLISH.len())]);
                    text.push(' ');
                }
                1 => text.push('，'),
                _ => {
                    let i = self.below(self.chars.len());
                    text.push(self.chars[i]);
                }
            }
        }
        text
    }
}

/// `lists` lists of a query (10-30 tokens) and `passages` passages (60-250 tokens each).
pub fn workload(lists: usize, passages: usize, seed: u64) -> Vec<Vec<String>> {
    let mut generator = TextGenerator::new(seed);
    (0..lists)
        .map(|_| {
            std::iter::once(generator.text(10, 30))
                .chain((0..passages).map(|_| generator.text(60, 250)))
                .collect()
        })
        .collect()
}
