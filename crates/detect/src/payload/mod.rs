//! Payload matching for one buffer: content chains with Suricata's relative/backtracking
//! semantics, pcre, isdataat, bsize, byte_test/byte_jump/byte_extract, transforms.
//!
//! [`PayloadMatcher::compile`] turns the keywords of one buffer group (in rule order) into a
//! matcher; [`PayloadMatcher::matches`] runs it on one buffer instance. The evaluation is a
//! transcription of Suricata 8's `DetectEngineContentInspectionInternal`:
//!
//! * a cursor (`buffer_offset`) holds the end of the last content/pcre match (moved also by
//!   `byte_jump` and `byte_extract`); relative keywords work from it, starting at 0;
//! * a content that matched but whose following keywords failed is searched again from
//!   (its match start + 1) only when the next keyword relative to it is `within`, a negated
//!   `distance`, `isdataat`/`pcre`/`byte_*` `relative` (Suricata's `DETECT_CONTENT_WITHIN_NEXT`;
//!   a plain positive `distance` never needs it because a later occurrence only shrinks its
//!   window); otherwise the whole buffer fails at once;
//! * a pcre followed by any relative keyword is retried from (its match start + 1);
//! * a non-relative content not found, a failed literal `isdataat` or a negated single content
//!   found end the inspection of the buffer immediately ("discontinue");
//! * every keyword evaluation counts towards [`INSPECTION_RECURSION_LIMIT`] (Suricata's
//!   `detect.inspection-recursion-limit`, default 3000); reaching it is a non-match, which
//!   bounds the work of pathological backtracking to O(limit × buffer length).
//!
//! Deliberate Suricata quirks kept: `content:!"x"; endswith;` compares the first occurrence's
//! end (an absolute offset) with the *window* length; a `within` window whose end is negative
//! (large negative `distance`) becomes the whole buffer; pcre without the `O` flag runs with
//! Suricata's default limits (match 3500, depth 1500) and a pcre that hits them does not match
//! (not even when negated).

mod bytes;
mod pcre;
mod search;
mod transform;

use std::fmt;

use sekisho_rules::{
    ByteExtract, ByteJump, ByteOpts, ByteTest, ByteTestOp, Content, Endian, IsDataAt, NumBase,
    RuleOption, SizeCmp, Value,
};

use self::pcre::CompiledPcre;
use self::search::Searcher;
use self::transform::Xform;

/// Maximum keyword evaluations for one buffer inspection (Suricata's default
/// `detect.inspection-recursion-limit`); hitting it makes the buffer not match.
pub const INSPECTION_RECURSION_LIMIT: u32 = 3000;

/// The pattern chosen for the multi-pattern prefilter of one buffer group.
///
/// It must be searched in the *transformed* buffer (see [`PayloadMatcher::transformed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastPattern {
    /// Pattern bytes (the `fast_pattern:off,len` slice when given).
    pub bytes: Vec<u8>,
    /// ASCII case-insensitive.
    pub nocase: bool,
}

/// Why a keyword cannot be modelled: the keyword name and a short reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmodelled {
    /// Keyword name as Suricata spells it (`byte_math`, `pcre`, `from_base64`...).
    pub keyword: String,
    /// Short human-readable reason.
    pub reason: String,
}

impl Unmodelled {
    pub(crate) fn new(keyword: impl Into<String>, reason: impl Into<String>) -> Unmodelled {
        Unmodelled {
            keyword: keyword.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Unmodelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.keyword, self.reason)
    }
}

impl std::error::Error for Unmodelled {}

/// Reusable per-thread scratch (byte_extract variables, transform buffers) so matching
/// allocates nothing in steady state.
#[derive(Debug, Default)]
pub struct MatchScratch {
    vars: Vec<u64>,
    a: Vec<u8>,
    b: Vec<u8>,
    /// A limit (PCRE match/depth limit, the inspection recursion limit) cut an evaluation
    /// short since the last [`MatchScratch::take_limit_hit`]: its "no match" is not a
    /// verdict on the data.
    limit_hit: bool,
    /// Incremental list matching: (rule order, tx id, instances evaluated without a match)
    /// found by the last evaluation, for the detector to remember in the flow's state.
    pub(crate) scanned: Vec<(u32, u64, u32)>,
    /// List-buffer instances evaluated since the detector last took the count.
    pub(crate) instances: u64,
}

impl MatchScratch {
    /// Whether a limit cut an evaluation short since the last call (and clears the mark).
    pub fn take_limit_hit(&mut self) -> bool {
        std::mem::take(&mut self.limit_hit)
    }

    /// Whether a limit cut an evaluation short (without clearing the mark).
    pub(crate) fn limit_hit(&self) -> bool {
        self.limit_hit
    }
}

/// A numeric operand: literal or byte_extract variable slot.
#[derive(Debug, Clone, Copy)]
enum Val {
    Lit(i64),
    Var(usize),
}

#[derive(Debug, Clone)]
struct ContentOp {
    pattern: Vec<u8>,
    nocase: bool,
    negated: bool,
    searcher: Searcher,
    /// distance or within present.
    relative: bool,
    distance: Option<Val>,
    within: Option<Val>,
    offset: Option<Val>,
    depth: Option<Val>,
    endswith: bool,
    /// Suricata's `DETECT_CONTENT_WITHIN_NEXT`: retry on failure of the rest.
    backtrack: bool,
    /// Suricata's `DETECT_CONTENT_IS_SINGLE`.
    single: bool,
    fast_pattern: Option<sekisho_rules::FastPattern>,
}

#[derive(Debug, Clone)]
struct ByteTestOpC {
    nbytes: Val,
    negated: bool,
    op: ByteTestOp,
    value: Val,
    offset: Val,
    relative: bool,
    little: bool,
    string: Option<NumBase>,
    bitmask: Option<u64>,
}

#[derive(Debug, Clone)]
struct ByteJumpOpC {
    nbytes: Val,
    offset: Val,
    relative: bool,
    little: bool,
    string: Option<NumBase>,
    multiplier: u64,
    align: bool,
    from_beginning: bool,
    from_end: bool,
    post_offset: i64,
}

#[derive(Debug, Clone)]
struct ByteExtractOpC {
    nbytes: usize,
    offset: i64,
    slot: usize,
    relative: bool,
    little: bool,
    string: Option<NumBase>,
    bitmask: Option<u64>,
    multiplier: u64,
    align: u64,
}

#[derive(Debug, Clone)]
enum Op {
    Content(Box<ContentOp>),
    Pcre {
        pcre: Box<CompiledPcre>,
        relative_next: bool,
    },
    IsDataAt {
        negated: bool,
        value: Val,
        relative: bool,
    },
    Bsize(SizeCmp),
    ByteTest(ByteTestOpC),
    ByteJump(ByteJumpOpC),
    ByteExtract(ByteExtractOpC),
    Absent {
        or_else: bool,
    },
}

/// A compiled sequence of payload keywords that apply to one buffer instance.
#[derive(Debug, Clone)]
pub struct PayloadMatcher {
    transforms: Vec<Xform>,
    ops: Vec<Op>,
    nvars: usize,
}

/// How a keyword depends on the previous content/pcre (Suricata's `*_NEXT` flags).
#[derive(Clone, Copy, PartialEq)]
enum RelKind {
    /// Positive content with `distance` only (`DETECT_CONTENT_DISTANCE_NEXT`).
    DistanceOnly,
    /// Anything else relative (`WITHIN_NEXT` / `RELATIVE_NEXT`).
    Full,
}

fn endian_little(opts: &ByteOpts, kw: &str) -> Result<bool, Unmodelled> {
    match opts.endian {
        None | Some(Endian::Big) => Ok(false),
        Some(Endian::Little) => Ok(true),
        Some(Endian::Dce) => Err(Unmodelled::new(kw, "dce endianness needs DCE/RPC state")),
    }
}

struct Compiler {
    vars: Vec<String>,
}

impl Compiler {
    fn val(&self, v: &Value, kw: &str) -> Result<Val, Unmodelled> {
        match v {
            Value::Lit(n) => Ok(Val::Lit(*n)),
            Value::Var(name) => self
                .vars
                .iter()
                .position(|n| n == name)
                .map(Val::Var)
                .ok_or_else(|| {
                    Unmodelled::new(
                        kw,
                        format!(
                            "variable '{name}' is not defined by a byte_extract in this buffer"
                        ),
                    )
                }),
        }
    }

    fn content(&self, c: &Content) -> Result<ContentOp, Unmodelled> {
        if c.pattern.is_empty() {
            return Err(Unmodelled::new("content", "empty pattern"));
        }
        let mut depth = c.depth.as_ref().map(|v| self.val(v, "depth")).transpose()?;
        let mut offset = c
            .offset
            .as_ref()
            .map(|v| self.val(v, "offset"))
            .transpose()?;
        if c.startswith {
            // startswith ≡ depth:len; offset:0 (the parser forbids mixing them).
            depth = Some(Val::Lit(c.pattern.len() as i64));
            offset = None;
        }
        Ok(ContentOp {
            searcher: Searcher::new(&c.pattern, c.nocase),
            pattern: c.pattern.clone(),
            nocase: c.nocase,
            negated: c.negated,
            relative: c.is_relative(),
            distance: c
                .distance
                .as_ref()
                .map(|v| self.val(v, "distance"))
                .transpose()?,
            within: c
                .within
                .as_ref()
                .map(|v| self.val(v, "within"))
                .transpose()?,
            offset,
            depth,
            endswith: c.endswith,
            backtrack: false,
            single: false,
            fast_pattern: c.fast_pattern,
        })
    }

    fn byte_test(&self, b: &ByteTest) -> Result<ByteTestOpC, Unmodelled> {
        Ok(ByteTestOpC {
            nbytes: self.val(&b.nbytes, "byte_test")?,
            negated: b.negated,
            op: b.op,
            value: self.val(&b.value, "byte_test")?,
            offset: self.val(&b.offset, "byte_test")?,
            relative: b.opts.relative,
            little: endian_little(&b.opts, "byte_test")?,
            string: b.opts.string,
            bitmask: b.opts.bitmask,
        })
    }

    fn byte_jump(&self, b: &ByteJump) -> Result<ByteJumpOpC, Unmodelled> {
        if b.opts.bitmask.is_some() {
            return Err(Unmodelled::new(
                "byte_jump",
                "bitmask is not a byte_jump option in Suricata 8",
            ));
        }
        Ok(ByteJumpOpC {
            nbytes: self.val(&b.nbytes, "byte_jump")?,
            offset: self.val(&b.offset, "byte_jump")?,
            relative: b.opts.relative,
            little: endian_little(&b.opts, "byte_jump")?,
            string: b.opts.string,
            multiplier: u64::from(b.multiplier.unwrap_or(1)),
            align: b.align,
            from_beginning: b.from_beginning,
            from_end: b.from_end,
            post_offset: b.post_offset.unwrap_or(0),
        })
    }

    fn byte_extract(&mut self, b: &ByteExtract) -> Result<ByteExtractOpC, Unmodelled> {
        let little = endian_little(&b.opts, "byte_extract")?;
        if b.nbytes == 0 {
            return Err(Unmodelled::new("byte_extract", "zero byte count"));
        }
        let slot = match self.vars.iter().position(|n| *n == b.name) {
            Some(i) => i,
            None => {
                self.vars.push(b.name.clone());
                self.vars.len() - 1
            }
        };
        Ok(ByteExtractOpC {
            nbytes: usize::from(b.nbytes),
            offset: b.offset,
            slot,
            relative: b.opts.relative,
            little,
            string: b.opts.string,
            bitmask: b.opts.bitmask,
            multiplier: u64::from(b.multiplier.unwrap_or(1)),
            align: u64::from(b.align.unwrap_or(0)),
        })
    }
}

impl PayloadMatcher {
    /// True for the options [`PayloadMatcher::compile`] takes: the payload keywords of a
    /// buffer group (content, pcre, isdataat, bsize, byte_*, transforms, absent). The
    /// detection compiler routes these into groups; everything else is rule-level.
    pub fn takes(o: &RuleOption) -> bool {
        matches!(
            o,
            RuleOption::Content(_)
                | RuleOption::Pcre(_)
                | RuleOption::IsDataAt(_)
                | RuleOption::Bsize(_)
                | RuleOption::ByteTest(_)
                | RuleOption::ByteJump(_)
                | RuleOption::ByteExtract(_)
                | RuleOption::ByteMath(_)
                | RuleOption::Transform(_)
                | RuleOption::Absent { .. }
        )
    }

    /// Compiles the options of one buffer group (in rule order). Options that are not
    /// payload keywords for a buffer (msg, sid, flow, flowbits, buffer selectors...) are not
    /// passed in. Transforms given here are applied to the buffer before matching.
    ///
    /// Legacy buffer modifiers on `content` (`http_uri`) and pcre buffer flags (`U`, `H`...)
    /// are taken as already routed by the caller and otherwise ignored.
    pub fn compile(opts: &[&RuleOption]) -> Result<PayloadMatcher, Unmodelled> {
        let mut cx = Compiler { vars: Vec::new() };
        let mut transforms = Vec::new();
        let mut ops = Vec::new();
        let mut rel: Vec<Option<RelKind>> = Vec::new();
        for opt in opts {
            let (op, r) = match opt {
                RuleOption::Transform(t) => {
                    if !ops.is_empty() {
                        return Err(Unmodelled::new(
                            t.name(),
                            "transform after a payload keyword (Suricata rejects this)",
                        ));
                    }
                    transforms.push(Xform::compile(t)?);
                    continue;
                }
                RuleOption::Content(c) => {
                    let op = cx.content(c)?;
                    let r = match (op.relative, op.within.is_some() || op.negated) {
                        (false, _) => None,
                        (true, true) => Some(RelKind::Full),
                        (true, false) => Some(RelKind::DistanceOnly),
                    };
                    (Op::Content(Box::new(op)), r)
                }
                RuleOption::Pcre(p) => {
                    let pcre = CompiledPcre::compile(p)?;
                    let r = pcre.relative.then_some(RelKind::Full);
                    (
                        Op::Pcre {
                            pcre: Box::new(pcre),
                            relative_next: false,
                        },
                        r,
                    )
                }
                RuleOption::IsDataAt(IsDataAt {
                    negated,
                    value,
                    relative,
                    ..
                }) => (
                    Op::IsDataAt {
                        negated: *negated,
                        value: cx.val(value, "isdataat")?,
                        relative: *relative,
                    },
                    relative.then_some(RelKind::Full),
                ),
                RuleOption::Bsize(s) => (Op::Bsize(*s), None),
                RuleOption::ByteTest(b) => (
                    Op::ByteTest(cx.byte_test(b)?),
                    b.opts.relative.then_some(RelKind::Full),
                ),
                RuleOption::ByteJump(b) => (
                    Op::ByteJump(cx.byte_jump(b)?),
                    b.opts.relative.then_some(RelKind::Full),
                ),
                RuleOption::ByteExtract(b) => (
                    Op::ByteExtract(cx.byte_extract(b)?),
                    b.opts.relative.then_some(RelKind::Full),
                ),
                RuleOption::Absent { or_else } => (Op::Absent { or_else: *or_else }, None),
                RuleOption::ByteMath(_) => {
                    return Err(Unmodelled::new("byte_math", "byte_math is not modelled"))
                }
                RuleOption::Dsize(_) => {
                    return Err(Unmodelled::new(
                        "dsize",
                        "dsize is a rule-level keyword, not part of a buffer matcher",
                    ))
                }
                other => {
                    return Err(Unmodelled::new(
                        other.keyword(),
                        "not a payload keyword for a buffer",
                    ))
                }
            };
            ops.push(op);
            rel.push(r);
        }
        // Set the *_NEXT flags on the last content/pcre before each relative keyword.
        let mut any_next = vec![false; ops.len()];
        for (j, r) in rel.iter().enumerate() {
            let Some(kind) = *r else { continue };
            let Some(p) = (0..j)
                .rev()
                .find(|&i| matches!(ops[i], Op::Content(_) | Op::Pcre { .. }))
            else {
                continue;
            };
            any_next[p] = true;
            match &mut ops[p] {
                Op::Content(c) => c.backtrack |= kind == RelKind::Full,
                Op::Pcre { relative_next, .. } => *relative_next = true,
                _ => {}
            }
        }
        for (i, op) in ops.iter_mut().enumerate() {
            if let Op::Content(c) = op {
                c.single = !(c.relative || any_next[i] || c.depth.is_some() || c.offset.is_some());
            }
        }
        Ok(PayloadMatcher {
            transforms,
            ops,
            nvars: cx.vars.len(),
        })
    }

    /// True when the group has no keyword at all (buffer must merely exist). Transforms
    /// alone do not count: they cannot make a buffer fail.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// True when transforms are applied before matching.
    pub fn has_transforms(&self) -> bool {
        !self.transforms.is_empty()
    }

    /// `Some(or_else)` when the group contains `absent` (`absent:or_else` → `true`). The
    /// caller decides what a missing buffer means; on a present buffer plain `absent` fails.
    pub fn absent(&self) -> Option<bool> {
        self.ops.iter().find_map(|o| match o {
            Op::Absent { or_else } => Some(*or_else),
            _ => None,
        })
    }

    /// The content chosen for the multi-pattern prefilter: the `fast_pattern` content if
    /// marked (honour `fast_pattern:off,len`), else the longest non-negated content
    /// (Suricata's choice: longest, ties → first); None when the group has no positive content.
    ///
    /// A `fast_pattern` on a negated content is skipped (its absence cannot be prefiltered).
    pub fn fast_pattern(&self) -> Option<FastPattern> {
        let contents = self.ops.iter().filter_map(|o| match o {
            Op::Content(c) if !c.negated => Some(c),
            _ => None,
        });
        let marked = contents.clone().find(|c| c.fast_pattern.is_some());
        if let Some(c) = marked {
            let bytes = match c.fast_pattern {
                Some(sekisho_rules::FastPattern::Slice(off, len)) => {
                    let start = usize::from(off).min(c.pattern.len());
                    let end = (start + usize::from(len)).min(c.pattern.len());
                    if start < end {
                        c.pattern[start..end].to_vec()
                    } else {
                        c.pattern.clone()
                    }
                }
                _ => c.pattern.clone(),
            };
            return Some(FastPattern {
                bytes,
                nocase: c.nocase,
            });
        }
        let mut best: Option<&ContentOp> = None;
        for c in contents {
            if best.is_none_or(|b| c.pattern.len() > b.pattern.len()) {
                best = Some(c);
            }
        }
        best.map(|c| FastPattern {
            bytes: c.pattern.clone(),
            nocase: c.nocase,
        })
    }

    /// The buffer after this group's transforms (the buffer itself when there are none);
    /// the prefilter must search this, not the raw buffer.
    pub fn transformed<'a>(&self, buf: &'a [u8], scratch: &'a mut MatchScratch) -> &'a [u8] {
        apply_transforms(&self.transforms, buf, &mut scratch.a, &mut scratch.b)
    }

    /// True when the whole group matches `buf` (one buffer instance).
    pub fn matches(&self, buf: &[u8], scratch: &mut MatchScratch) -> bool {
        if self.ops.is_empty() {
            return true;
        }
        let MatchScratch {
            vars,
            a,
            b,
            limit_hit,
            ..
        } = scratch;
        let data = apply_transforms(&self.transforms, buf, a, b);
        vars.clear();
        vars.resize(self.nvars, 0);
        let mut st = State {
            vars,
            cursor: 0,
            pcre_start: 0,
            count: 0,
            limit_hit: false,
        };
        let r = self.inspect(0, data, &mut st) == MATCH;
        *limit_hit |= st.limit_hit;
        r
    }
}

fn apply_transforms<'a>(
    xs: &[Xform],
    buf: &'a [u8],
    a: &'a mut Vec<u8>,
    b: &'a mut Vec<u8>,
) -> &'a [u8] {
    let mut in_a = None;
    for x in xs {
        match in_a {
            None => x.apply(buf, a),
            Some(true) => x.apply(a, b),
            Some(false) => x.apply(b, a),
        }
        in_a = Some(!matches!(in_a, Some(true)));
    }
    match in_a {
        None => buf,
        Some(true) => a,
        Some(false) => b,
    }
}

/// Inspection results, as in Suricata: match, no match (caller may retry), discontinue.
const MATCH: i8 = 1;
const NO_MATCH: i8 = 0;
const DISCONTINUE: i8 = -1;

struct State<'s> {
    vars: &'s mut [u64],
    /// `det_ctx->buffer_offset`.
    cursor: usize,
    /// `det_ctx->pcre_match_start_offset`.
    pcre_start: usize,
    count: u32,
    /// A limit cut this evaluation short.
    limit_hit: bool,
}

impl State<'_> {
    /// Value of an operand as Suricata's `(int32_t)det_ctx->byte_values[i]` (byte_jump and
    /// byte_test offsets and counts): variables are truncated to 32 bits, not saturated.
    fn val_i32(&self, v: Val) -> i64 {
        match v {
            Val::Lit(n) => n,
            Val::Var(i) => self.vars.get(i).map_or(0, |&x| i64::from(x as i32)),
        }
    }

    /// Value of an operand as a signed 64-bit number (variables are unsigned; huge values
    /// saturate so they fail range checks instead of wrapping).
    fn val(&self, v: Val) -> i64 {
        match v {
            Val::Lit(n) => n,
            Val::Var(i) => self
                .vars
                .get(i)
                .map_or(0, |&x| i64::try_from(x).unwrap_or(i64::MAX)),
        }
    }
}

impl PayloadMatcher {
    /// Evaluates keyword `i` and, through recursion, the ones after it.
    fn inspect(&self, i: usize, buf: &[u8], st: &mut State<'_>) -> i8 {
        st.count += 1;
        if st.count >= INSPECTION_RECURSION_LIMIT {
            st.limit_hit = true;
            return DISCONTINUE;
        }
        let Some(op) = self.ops.get(i) else {
            return NO_MATCH;
        };
        let ok = match op {
            Op::Content(c) => return self.content(i, c, buf, st),
            Op::Pcre {
                pcre,
                relative_next,
            } => return self.pcre(i, pcre, *relative_next, buf, st),
            Op::IsDataAt {
                negated,
                value,
                relative,
            } => {
                let is_var = matches!(value, Val::Var(_));
                let n = st.val(*value).max(0) as u64;
                if is_var && n >= 100_000_000 {
                    return if *negated {
                        self.next(i, buf, st)
                    } else {
                        NO_MATCH
                    };
                }
                let fail = if is_var { NO_MATCH } else { DISCONTINUE };
                let len = buf.len() as u64;
                let has = if *relative {
                    st.cursor as u64 + n <= len
                } else {
                    n < len
                };
                match (has, *negated) {
                    (true, false) | (false, true) => true,
                    // Suricata: a relative negated isdataat that fails is a plain no-match.
                    (true, true) if *relative => return NO_MATCH,
                    _ => return fail,
                }
            }
            Op::Bsize(cmp) => {
                let n = buf.len() as u64;
                match *cmp {
                    SizeCmp::Eq(v) => n == v,
                    SizeCmp::Ne(v) => n != v,
                    SizeCmp::Lt(v) => n < v,
                    SizeCmp::Gt(v) => n > v,
                    SizeCmp::Le(v) => n <= v,
                    SizeCmp::Ge(v) => n >= v,
                    SizeCmp::Between(a, b) => a < n && n < b,
                }
            }
            Op::ByteTest(b) => byte_test(b, buf, st),
            Op::ByteJump(b) => byte_jump(b, buf, st),
            Op::ByteExtract(b) => byte_extract(b, buf, st),
            Op::Absent { or_else } => *or_else,
        };
        if ok {
            self.next(i, buf, st)
        } else {
            NO_MATCH
        }
    }

    /// Suricata's `match:` label: continue with the next keyword, or succeed after the last.
    fn next(&self, i: usize, buf: &[u8], st: &mut State<'_>) -> i8 {
        if i + 1 >= self.ops.len() {
            MATCH
        } else {
            self.inspect(i + 1, buf, st)
        }
    }

    fn content(&self, i: usize, c: &ContentOp, buf: &[u8], st: &mut State<'_>) -> i8 {
        let len = buf.len() as i64;
        let plen = c.pattern.len() as i64;
        let prev = st.cursor as i64;
        let mut prev_offset: i64 = 0;
        loop {
            let (mut offset, mut depth);
            if c.relative {
                offset = prev;
                let distance = c.distance.map_or(0, |v| st.val_i32(v) as i32 as i64);
                if c.distance.is_some() {
                    if distance < 0 && -distance > offset {
                        offset = 0;
                    } else {
                        offset += distance;
                    }
                }
                depth = len;
                if let Some(w) = c.within {
                    let end = prev.saturating_add(st.val(w)).saturating_add(distance);
                    if end < depth {
                        // Suricata stores a negative end in a u32, then clamps it to the
                        // buffer length: the window becomes the whole buffer.
                        depth = if end < 0 { len } else { end };
                    }
                }
            } else {
                offset = c.offset.map_or(0, |v| st.val(v).max(0));
                depth = match c.depth {
                    Some(d) => offset.saturating_add(st.val(d).max(0)),
                    None => len,
                };
            }
            if prev_offset != 0 {
                offset = prev_offset;
            }
            depth = depth.min(len);
            if offset > depth || depth == 0 {
                return if c.negated {
                    self.next(i, buf, st)
                } else {
                    NO_MATCH
                };
            }
            let (o, d) = (offset as usize, depth as usize);
            let window = &buf[o..d];
            // endswith cannot match when the window stops before the buffer end.
            let found = if (c.endswith && depth < len) || plen > depth - offset {
                None
            } else {
                c.searcher.find(window)
            };
            let Some(pos) = found else {
                if c.negated {
                    return self.next(i, buf, st);
                }
                return if c.relative { NO_MATCH } else { DISCONTINUE };
            };
            let match_end = (o + pos) as i64 + plen;
            if c.negated {
                if c.endswith && (depth - offset) != match_end {
                    return self.next(i, buf, st);
                }
                return if c.single { DISCONTINUE } else { NO_MATCH };
            }
            st.cursor = match_end as usize;
            if !c.endswith || match_end == len {
                if i + 1 >= self.ops.len() {
                    return MATCH;
                }
                match self.inspect(i + 1, buf, st) {
                    MATCH => return MATCH,
                    DISCONTINUE => return DISCONTINUE,
                    _ => {}
                }
                if !c.backtrack {
                    return DISCONTINUE;
                }
            }
            prev_offset = match_end - (plen - 1);
        }
    }

    fn pcre(
        &self,
        i: usize,
        p: &CompiledPcre,
        relative_next: bool,
        buf: &[u8],
        st: &mut State<'_>,
    ) -> i8 {
        let prev_cursor = st.cursor;
        st.pcre_start = 0;
        loop {
            if !pcre_match(p, buf, st) {
                return NO_MATCH;
            }
            if !relative_next {
                return self.next(i, buf, st);
            }
            let prev_start = st.pcre_start;
            match self.next(i, buf, st) {
                MATCH => return MATCH,
                DISCONTINUE => return DISCONTINUE,
                _ => {}
            }
            if prev_start == 0 {
                // Negated pcre: there is no occurrence to move past.
                return NO_MATCH;
            }
            st.cursor = prev_cursor;
            st.pcre_start = prev_start;
        }
    }
}

/// Suricata's `DetectPcrePayloadMatch`.
fn pcre_match(p: &CompiledPcre, buf: &[u8], st: &mut State<'_>) -> bool {
    let base = if p.relative {
        st.cursor.min(buf.len())
    } else {
        0
    };
    let subject = &buf[base..];
    let start = if st.pcre_start != 0 {
        st.pcre_start.saturating_sub(base)
    } else {
        0
    };
    match p.find_at(subject, start) {
        Ok(Some((s, e))) => {
            if p.negated {
                return false;
            }
            st.cursor = base + e;
            st.pcre_start = base + s + 1;
            true
        }
        Ok(None) => p.negated,
        Err(()) => {
            // Past the end is a plain no-match; otherwise PCRE2 gave up (match or depth
            // limit): not a verdict on the data.
            if start <= subject.len() {
                st.limit_hit = true;
            }
            false
        }
    }
}

/// Reads the number for a byte_* keyword at `ptr` (`len` bytes available from `ptr`);
/// returns (value, bytes consumed).
fn extract(
    buf: &[u8],
    ptr: usize,
    nbytes: usize,
    string: Option<NumBase>,
    little: bool,
) -> Option<(u64, usize)> {
    let rest = buf.get(ptr..)?;
    match string {
        Some(base) => {
            // nbytes 0 with `string`: Suricata hands strtoull the unterminated buffer.
            let s = if nbytes == 0 {
                rest
            } else {
                rest.get(..nbytes)?
            };
            bytes::strtoull(s, base)
        }
        None => Some((bytes::read_uint(rest.get(..nbytes)?, little), nbytes)),
    }
}

fn valid_nbytes(n: i64, string: bool) -> Option<usize> {
    let max = if string { 23 } else { 8 };
    (1..=max).contains(&n).then_some(n as usize)
}

fn apply_bitmask(val: u64, mask: Option<u64>) -> u64 {
    match mask {
        Some(m) => {
            let v = val & m;
            if v != 0 && m != 0 {
                v >> m.trailing_zeros()
            } else {
                v
            }
        }
        None => val,
    }
}

/// Start and remaining length for byte_test/byte_extract (relative adds the cursor).
fn byte_window(buf: &[u8], cursor: usize, offset: i64, relative: bool) -> Option<(usize, i64)> {
    let blen = buf.len() as i64;
    let (ptr, len) = if relative {
        let ptr = cursor as i64 + offset;
        let len = blen - cursor as i64 - offset;
        if len <= 0 {
            return None;
        }
        (ptr, len)
    } else {
        (offset, blen - offset)
    };
    if ptr < 0 {
        return None;
    }
    Some((ptr as usize, len))
}

fn byte_test(b: &ByteTestOpC, buf: &[u8], st: &mut State<'_>) -> bool {
    let nbytes = match b.nbytes {
        Val::Lit(n) => n.max(0) as usize,
        Val::Var(_) => match valid_nbytes(st.val(b.nbytes), b.string.is_some()) {
            Some(n) => n,
            None => return false,
        },
    };
    let offset = match b.offset {
        Val::Var(_) => st.val_i32(b.offset),
        Val::Lit(n) => n,
    };
    let Some((ptr, len)) = byte_window(buf, st.cursor, offset, b.relative) else {
        return false;
    };
    if nbytes as i64 > len {
        return false;
    }
    let Some((val, _)) = extract(buf, ptr, nbytes, b.string, b.little) else {
        return false;
    };
    let val = apply_bitmask(val, b.bitmask);
    let value = st.val(b.value) as u64;
    let m = match b.op {
        ByteTestOp::Eq => val == value,
        ByteTestOp::Lt => val < value,
        ByteTestOp::Gt => val > value,
        ByteTestOp::Le => val <= value,
        ByteTestOp::Ge => val >= value,
        ByteTestOp::And => val & value != 0,
        ByteTestOp::Xor => val ^ value != 0,
    };
    m != b.negated
}

/// Suricata's `DetectBytejumpDoMatch`.
fn byte_jump(b: &ByteJumpOpC, buf: &[u8], st: &mut State<'_>) -> bool {
    if buf.is_empty() {
        return false;
    }
    let nbytes = match b.nbytes {
        Val::Lit(n) => n.max(0),
        Val::Var(_) => {
            // `DetectBytejumpValidateNbytesOnly` has no lower bound: an extracted 0 is a
            // zero-byte read (value 0, the cursor stays put) and a negative count passes too.
            let n = st.val_i32(b.nbytes);
            if n > if b.string.is_some() { 23 } else { 8 } {
                return false;
            }
            n
        }
    };
    let offset = st.val_i32(b.offset);
    let blen = buf.len() as i64;
    let mut ptr = offset;
    let mut len = blen - offset;
    if b.relative {
        ptr += st.cursor as i64;
        len -= st.cursor as i64;
        if nbytes != 0 && len <= 0 {
            return false;
        }
    }
    if ptr < 0 || nbytes > len {
        return false;
    }
    let (val, ext) = if nbytes < 0 {
        // `ByteExtractUint64` gets the count as u16 and returns -1 (> 8 bytes); Suricata
        // then compares that with the count, so only -1 "succeeds", with the value still 0.
        // A string extraction of a negative count always fails.
        if nbytes != -1 || b.string.is_some() {
            return false;
        }
        (0, -1)
    } else if nbytes == 0 && b.string.is_none() {
        // Zero-byte numeric read: reads nothing, so it succeeds even at the buffer end.
        (0, 0)
    } else {
        match extract(buf, ptr as usize, nbytes as usize, b.string, b.little) {
            Some((v, e)) => (v, e as i64),
            None => return false,
        }
    };
    let mut val = val.wrapping_mul(b.multiplier);
    if b.align && !val.is_multiple_of(4) {
        val = val.wrapping_add(4 - val % 4);
    }
    let val = val.wrapping_add(b.post_offset as u64) as i64 as i128;
    let target = if b.from_beginning {
        val
    } else if b.from_end {
        i128::from(blen) + val
    } else {
        i128::from(ptr) + val + i128::from(ext)
    };
    if target > i128::from(blen) {
        return false;
    }
    st.cursor = target.max(0) as usize;
    true
}

fn byte_extract(b: &ByteExtractOpC, buf: &[u8], st: &mut State<'_>) -> bool {
    if buf.is_empty() {
        return false;
    }
    let Some((ptr, len)) = byte_window(buf, st.cursor, b.offset, b.relative) else {
        return false;
    };
    if b.nbytes as i64 > len {
        return false;
    }
    let Some((val, ext)) = extract(buf, ptr, b.nbytes, b.string, b.little) else {
        return false;
    };
    let mut val = apply_bitmask(val, b.bitmask).wrapping_mul(b.multiplier);
    if b.align != 0 && !val.is_multiple_of(b.align) {
        val = val.wrapping_add(b.align - val % b.align);
    }
    st.cursor = ptr + ext;
    if let Some(slot) = st.vars.get_mut(b.slot) {
        *slot = val;
    }
    true
}
