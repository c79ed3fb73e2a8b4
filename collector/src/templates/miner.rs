//! The template miner: masking, the parse tree, similarity and persistence.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use super::mask::{WILDCARD, is_date_word, looks_variable, mask_token};

/// Tree depth used when none is configured.
pub const DEFAULT_DEPTH: usize = 4;
/// Similarity threshold used when none is configured.
pub const DEFAULT_SIMILARITY_THRESHOLD: f64 = 0.8;
/// Children per tree node used when none is configured.
pub const DEFAULT_MAX_CHILDREN: usize = 100;
/// Live templates kept when no limit is configured.
pub const DEFAULT_MAX_TEMPLATES: usize = 50_000;
/// Tokens per message looked at when none is configured.
pub const DEFAULT_MAX_TOKENS: usize = 128;

/// Similarity credit for a plain word where the template already has a wildcard.
const WORD_UNDER_WILDCARD_CREDIT: f64 = 0.5;

/// Version written into persisted state; state of another version is refused.
const STATE_VERSION: u32 = 1;

/// Tuning of a [`TemplateMiner`]. The defaults are meant for every kind of log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerConfig {
    /// Depth of the parse tree: the token-count layer plus `depth - 2` layers keyed by
    /// the leading tokens. Deeper trees compare each line with fewer candidates (faster,
    /// and templates that differ in their first words never merge) but a variable in a
    /// leading position that masking misses then splits one template into many.
    /// At least 3.
    pub depth: usize,
    /// Share of tokens, from 0 to 1, that must agree for a line to join a template.
    /// Lower values merge more eagerly (fewer, vaguer templates); higher values split
    /// templates whose variables were not masked. Agreement on words counts more than
    /// agreement on tokens that hold digits or symbols.
    pub similarity_threshold: f64,
    /// Children per tree node before further leading tokens share one wildcard child.
    /// Bounds the tree's fan-out when a leading token is an unmasked variable; too low
    /// a value puts unrelated templates into one crowded leaf, which costs speed.
    pub max_children: usize,
    /// Live templates kept; when a new one is needed beyond this, the least recently
    /// seen one is forgotten (its lines are safe, only its counter restarts if it comes
    /// back). Bounds memory against input that never repeats.
    pub max_templates: usize,
    /// Tokens of a message that are looked at; any further tokens are folded into one
    /// trailing wildcard. Bounds the work per line for huge lines.
    pub max_tokens: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        Self {
            depth: DEFAULT_DEPTH,
            similarity_threshold: DEFAULT_SIMILARITY_THRESHOLD,
            max_children: DEFAULT_MAX_CHILDREN,
            max_templates: DEFAULT_MAX_TEMPLATES,
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

impl MinerConfig {
    /// Checks every bound and reports the first field that breaks one.
    pub fn validate(&self) -> Result<(), MinerConfigError> {
        let fail = |field: &'static str, value: String, rule: &'static str| {
            Err(MinerConfigError { field, value, rule })
        };
        if self.depth < 3 {
            return fail("depth", self.depth.to_string(), "must be at least 3");
        }
        if !(0.0..=1.0).contains(&self.similarity_threshold) {
            let value = self.similarity_threshold.to_string();
            return fail("similarity_threshold", value, "must be between 0 and 1");
        }
        if self.max_children < 1 {
            return fail(
                "max_children",
                self.max_children.to_string(),
                "must be at least 1",
            );
        }
        if self.max_templates < 1 {
            return fail(
                "max_templates",
                self.max_templates.to_string(),
                "must be at least 1",
            );
        }
        if self.max_tokens < 2 {
            return fail(
                "max_tokens",
                self.max_tokens.to_string(),
                "must be at least 2",
            );
        }
        Ok(())
    }
}

/// A [`MinerConfig`] field outside its bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct MinerConfigError {
    /// Name of the field.
    pub field: &'static str,
    /// The value it had.
    pub value: String,
    /// The rule it broke.
    pub rule: &'static str,
}

impl fmt::Display for MinerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "template miner {} = {} {}",
            self.field, self.value, self.rule
        )
    }
}

impl std::error::Error for MinerConfigError {}

/// Persisted miner state that could not be loaded.
#[derive(Debug)]
pub enum MinerStateError {
    /// The bytes are not valid state JSON.
    Decode(serde_json::Error),
    /// The state was written by an incompatible version.
    Version(u32),
    /// The stored configuration breaks a bound.
    Config(MinerConfigError),
}

impl fmt::Display for MinerStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "cannot decode template miner state: {e}"),
            Self::Version(v) => {
                write!(f, "template miner state version {v} is not {STATE_VERSION}")
            }
            Self::Config(e) => write!(f, "stored {e}"),
        }
    }
}

impl std::error::Error for MinerStateError {}

/// Stable identity of a template; displayed as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TemplateId(pub u64);

impl fmt::Display for TemplateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The template a message was classified into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateMatch {
    /// Identity of the template, unchanged for its whole life.
    pub id: TemplateId,
    /// Template text, tokens joined by single spaces, variables as `<*>`.
    pub template: String,
    /// The message created this template.
    pub is_new: bool,
    /// The message turned more of an existing template into variables.
    pub template_changed: bool,
}

/// A template and how many messages it has grouped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateInfo {
    /// Identity of the template.
    pub id: TemplateId,
    /// Template text.
    pub template: String,
    /// Messages grouped since the template was created (or loaded).
    pub count: u64,
}

/// One template and its bookkeeping.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cluster {
    id: TemplateId,
    /// Keys of the tree path the cluster was filed under, so a reload refiles it there.
    route: Vec<Box<str>>,
    tokens: Vec<Box<str>>,
    count: u64,
    /// Value of the miner's clock when the cluster was created; orders a reload.
    created: u64,
    /// Value of the miner's clock when the cluster last matched; the oldest is evicted.
    last_seen: u64,
}

impl Cluster {
    fn text(&self) -> String {
        self.tokens.join(" ")
    }

    fn info(&self) -> TemplateInfo {
        TemplateInfo {
            id: self.id,
            template: self.text(),
            count: self.count,
        }
    }
}

/// A node of the parse tree; leaves list cluster slots in creation order.
#[derive(Debug, Default, Clone)]
struct Node {
    children: HashMap<Box<str>, Node>,
    clusters: Vec<u32>,
}

/// A message split into masked tokens, kept in one reusable buffer.
#[derive(Debug, Default, Clone)]
struct Masked {
    text: String,
    spans: Vec<(usize, usize)>,
}

impl Masked {
    fn fill(&mut self, message: &str, max_tokens: usize) {
        self.text.clear();
        self.spans.clear();
        let mut words = message.split_ascii_whitespace();
        for word in words.by_ref() {
            let start = self.text.len();
            mask_token(word, &mut self.text);
            self.spans.push((start, self.text.len()));
            if self.spans.len() == max_tokens - 1 {
                break;
            }
        }
        if words.next().is_some() {
            let start = self.text.len();
            self.text.push_str(WILDCARD);
            self.spans.push((start, self.text.len()));
        }
        self.normalise();
    }

    /// Masks month and weekday names next to a masked value or another such name, as in
    /// `Fri Jun 17 07:07:00 2005`, without touching the same words elsewhere; then folds
    /// runs of equal masked tokens (`blk_<*> blk_<*> blk_<*>`) into one, so that lists
    /// and dates of varying length keep one token count.
    fn normalise(&mut self) {
        let repeated =
            |i: usize| self.token(i) == self.token(i - 1) && self.token(i).contains(WILDCARD);
        if !self.tokens().any(is_date_word) && !(1..self.len()).any(repeated) {
            return;
        }
        let dates: Vec<bool> = self.tokens().map(is_date_word).collect();
        let masked_at = |i: usize| self.token(i) == WILDCARD || dates[i];
        let beside_value =
            |i: usize| (i > 0 && masked_at(i - 1)) || (i + 1 < self.len() && masked_at(i + 1));
        let masked: Vec<bool> = (0..self.len())
            .map(|i| dates[i] && beside_value(i))
            .collect();
        let token = |i: usize| if masked[i] { WILDCARD } else { self.token(i) };
        let repeats = |i: usize| i > 0 && token(i) == token(i - 1) && token(i).contains(WILDCARD);
        if !masked.contains(&true) && !(0..self.len()).any(repeats) {
            return;
        }
        let mut text = String::with_capacity(self.text.len());
        let mut spans = Vec::with_capacity(self.spans.len());
        for i in (0..self.len()).filter(|&i| !repeats(i)) {
            let start = text.len();
            text.push_str(token(i));
            spans.push((start, text.len()));
        }
        self.text = text;
        self.spans = spans;
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    fn token(&self, i: usize) -> &str {
        let (start, end) = self.spans[i];
        &self.text[start..end]
    }

    fn tokens(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.token(i))
    }
}

/// An online template miner; see the module documentation for the algorithm.
#[derive(Debug, Clone)]
pub struct TemplateMiner {
    config: MinerConfig,
    /// One tree per token count.
    roots: HashMap<usize, Node>,
    /// Cluster slots; `None` marks a slot freed by eviction.
    clusters: Vec<Option<Cluster>>,
    free_slots: Vec<u32>,
    /// Ids of the live clusters, to keep new ids unique.
    ids: HashSet<TemplateId>,
    live: usize,
    /// Counts added messages; stamps creation and last use of clusters.
    clock: u64,
    scratch: Masked,
}

impl TemplateMiner {
    /// A miner with no templates. Out-of-bounds settings are clamped to the nearest
    /// valid value; call [`MinerConfig::validate`] first to report them instead.
    pub fn new(config: MinerConfig) -> Self {
        Self {
            config: clamp(config),
            roots: HashMap::new(),
            clusters: Vec::new(),
            free_slots: Vec::new(),
            ids: HashSet::new(),
            live: 0,
            clock: 0,
            scratch: Masked::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &MinerConfig {
        &self.config
    }

    /// Number of live templates.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no template has been learnt.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Classifies `message`, learning from it: it joins the most similar template, which
    /// may generalise, or starts a new one.
    pub fn add(&mut self, message: &str) -> TemplateMatch {
        let mut masked = std::mem::take(&mut self.scratch);
        masked.fill(message, self.config.max_tokens);
        self.clock += 1;
        let found = self.search(&masked);
        let result = match found {
            Some(slot) => self.absorb(slot, &masked),
            None => self.create(&masked),
        };
        self.scratch = masked;
        result
    }

    /// Classifies `message` without learning from it; `None` when no template fits.
    pub fn match_only(&self, message: &str) -> Option<TemplateMatch> {
        let mut masked = Masked::default();
        masked.fill(message, self.config.max_tokens);
        let slot = self.search(&masked)?;
        let cluster = self.cluster(slot);
        Some(TemplateMatch {
            id: cluster.id,
            template: cluster.text(),
            is_new: false,
            template_changed: false,
        })
    }

    /// Every live template, in no particular order.
    pub fn templates(&self) -> impl Iterator<Item = TemplateInfo> + '_ {
        self.clusters.iter().flatten().map(Cluster::info)
    }

    /// Serialises the whole state as JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("template miner state always serialises")
    }

    /// Restores a miner saved by [`TemplateMiner::to_bytes`], with the same ids.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MinerStateError> {
        let state: State = serde_json::from_slice(bytes).map_err(MinerStateError::Decode)?;
        Self::from_state(state)
    }

    fn from_state(state: State) -> Result<Self, MinerStateError> {
        if state.version != STATE_VERSION {
            return Err(MinerStateError::Version(state.version));
        }
        state.config.validate().map_err(MinerStateError::Config)?;
        let mut miner = Self::new(state.config);
        miner.clock = state.clock;
        for cluster in state.templates {
            miner.insert(cluster);
        }
        Ok(miner)
    }

    fn cluster(&self, slot: u32) -> &Cluster {
        self.clusters[slot as usize]
            .as_ref()
            .expect("tree points at live clusters")
    }

    /// Live clusters in creation order, the order a reload must insert them in so that
    /// every leaf lists its clusters as before.
    fn creation_order(&self) -> Vec<&Cluster> {
        let mut order: Vec<&Cluster> = self.clusters.iter().flatten().collect();
        order.sort_by_key(|c| c.created);
        order
    }

    /// Finds the best cluster for a masked message, if any passes the threshold.
    fn search(&self, masked: &Masked) -> Option<u32> {
        let mut node = self.roots.get(&masked.len())?;
        for i in 0..self.route_len(masked.len()) {
            let key = route_key(masked.token(i));
            node = node
                .children
                .get(key)
                .or_else(|| node.children.get(WILDCARD))?;
        }
        self.best_in_leaf(&node.clusters, masked)
    }

    fn route_len(&self, len: usize) -> usize {
        (self.config.depth - 2).min(len)
    }

    fn best_in_leaf(&self, slots: &[u32], masked: &Masked) -> Option<u32> {
        let mut best: Option<(f64, u32)> = None;
        for &slot in slots {
            let score = similarity(&self.cluster(slot).tokens, masked);
            if score >= self.config.similarity_threshold && best.is_none_or(|(b, _)| score > b) {
                best = Some((score, slot));
            }
        }
        best.map(|(_, slot)| slot)
    }

    fn absorb(&mut self, slot: u32, masked: &Masked) -> TemplateMatch {
        let clock = self.clock;
        let cluster = self.clusters[slot as usize]
            .as_mut()
            .expect("search returns live slots");
        let mut changed = false;
        for (i, token) in cluster.tokens.iter_mut().enumerate() {
            if &**token != WILDCARD && &**token != masked.token(i) {
                *token = WILDCARD.into();
                changed = true;
            }
        }
        cluster.count += 1;
        cluster.last_seen = clock;
        TemplateMatch {
            id: cluster.id,
            template: cluster.text(),
            is_new: false,
            template_changed: changed,
        }
    }

    fn create(&mut self, masked: &Masked) -> TemplateMatch {
        if self.live >= self.config.max_templates {
            self.evict_oldest();
        }
        let tokens: Vec<Box<str>> = masked.tokens().map(Box::from).collect();
        let cluster = Cluster {
            id: self.fresh_id(&tokens),
            route: self.plan_route(masked),
            tokens,
            count: 1,
            created: self.clock,
            last_seen: self.clock,
        };
        let result = TemplateMatch {
            id: cluster.id,
            template: cluster.text(),
            is_new: true,
            template_changed: false,
        };
        self.insert(cluster);
        result
    }

    /// Id from the first masked token sequence; a collision with a live template (only
    /// possible by hash collision, or when an evicted template's first line reappears
    /// in another form) is resolved by rehashing with a counter, deterministically.
    fn fresh_id(&self, tokens: &[Box<str>]) -> TemplateId {
        let text = tokens.join(" ");
        let mut id = xxh3_64(text.as_bytes());
        let mut salt = 0u64;
        while self.ids.contains(&TemplateId(id)) {
            salt += 1;
            id = xxh3_64(format!("{text}\u{0}{salt}").as_bytes());
        }
        TemplateId(id)
    }

    /// Keys under which a new cluster for `masked` is filed: existing children first,
    /// then a new child while the node has room, else the shared wildcard child.
    fn plan_route(&self, masked: &Masked) -> Vec<Box<str>> {
        let mut node = self.roots.get(&masked.len());
        let mut route = Vec::new();
        for i in 0..self.route_len(masked.len()) {
            let key = route_key(masked.token(i));
            let chosen = match node {
                Some(n)
                    if !n.children.contains_key(key)
                        && n.children.len() >= self.config.max_children =>
                {
                    WILDCARD
                }
                _ => key,
            };
            node = node.and_then(|n| n.children.get(chosen));
            route.push(Box::from(chosen));
        }
        route
    }

    fn insert(&mut self, cluster: Cluster) {
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.clusters.push(None);
                (self.clusters.len() - 1) as u32
            }
        };
        let mut node = self.roots.entry(cluster.tokens.len()).or_default();
        for key in &cluster.route {
            node = node.children.entry(key.clone()).or_default();
        }
        node.clusters.push(slot);
        self.ids.insert(cluster.id);
        self.clusters[slot as usize] = Some(cluster);
        self.live += 1;
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .clusters
            .iter()
            .enumerate()
            .filter_map(|(slot, c)| c.as_ref().map(|c| (c.last_seen, slot)))
            .min();
        let Some((_, slot)) = oldest else { return };
        let cluster = self.clusters[slot].take().expect("slot is live");
        remove_from_tree(&mut self.roots, &cluster, slot as u32);
        self.ids.remove(&cluster.id);
        self.free_slots.push(slot as u32);
        self.live -= 1;
    }
}

/// Drops a cluster from its leaf and prunes nodes left empty, so the tree stays a
/// function of the live clusters' routes (and a reload rebuilds it exactly).
fn remove_from_tree(roots: &mut HashMap<usize, Node>, cluster: &Cluster, slot: u32) {
    let len = cluster.tokens.len();
    if let Some(root) = roots.get_mut(&len) {
        remove_along(root, &cluster.route, slot);
        if root.children.is_empty() && root.clusters.is_empty() {
            roots.remove(&len);
        }
    }
}

fn remove_along(node: &mut Node, route: &[Box<str>], slot: u32) {
    let Some((key, rest)) = route.split_first() else {
        node.clusters.retain(|&s| s != slot);
        return;
    };
    if let Some(child) = node.children.get_mut(key) {
        remove_along(child, rest, slot);
        if child.children.is_empty() && child.clusters.is_empty() {
            node.children.remove(key);
        }
    }
}

/// The tree key for a leading token: tokens that may hold a variable share the
/// wildcard child, so a number in a leading position does not split a template.
fn route_key(token: &str) -> &str {
    if looks_variable(token) {
        WILDCARD
    } else {
        token
    }
}

/// Share of positions where the template agrees with the message. Equal tokens agree,
/// masked values included (`<*>` against `<*>`); a template wildcard agrees fully with a
/// token that may hold a variable and half with a plain word, so a template keeps
/// accepting new words where it has generalised but cannot turn into all wildcards.
fn similarity(template: &[Box<str>], masked: &Masked) -> f64 {
    if template.is_empty() {
        return 1.0;
    }
    let mut score = 0.0;
    for (i, token) in template.iter().enumerate() {
        let candidate = masked.token(i);
        if **token == *candidate {
            score += 1.0;
        } else if &**token == WILDCARD {
            score += if looks_variable(candidate) {
                1.0
            } else {
                WORD_UNDER_WILDCARD_CREDIT
            };
        }
    }
    score / template.len() as f64
}

fn clamp(mut config: MinerConfig) -> MinerConfig {
    config.depth = config.depth.max(3);
    config.similarity_threshold = config.similarity_threshold.clamp(0.0, 1.0);
    config.max_children = config.max_children.max(1);
    config.max_templates = config.max_templates.max(1);
    config.max_tokens = config.max_tokens.max(2);
    config
}

#[derive(Serialize)]
struct StateRef<'a> {
    version: u32,
    config: &'a MinerConfig,
    clock: u64,
    templates: Vec<&'a Cluster>,
}

#[derive(Deserialize)]
struct State {
    version: u32,
    config: MinerConfig,
    clock: u64,
    templates: Vec<Cluster>,
}

impl Serialize for TemplateMiner {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let state = StateRef {
            version: STATE_VERSION,
            config: &self.config,
            clock: self.clock,
            templates: self.creation_order(),
        };
        state.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TemplateMiner {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let state = State::deserialize(deserializer)?;
        Self::from_state(state).map_err(serde::de::Error::custom)
    }
}
