//! Link impairment: the root qdisc of an interface, netem or tbf (`tc qdisc replace|del|show
//! dev X root …`), over netlink.
//!
//! netlink-packet-route has no netem or tbf option types, so this module encodes their
//! TCA_OPTIONS itself, byte for byte as iproute2's `tc` does (q_netem.c, q_tbf.c, tc_core.c);
//! the unit tests compare with what `tc` 6.1 sent, captured with strace.
//!
//! Which qdisc a link gets (see [`QdiscKind::for_impair`]):
//! - any of delay, jitter, loss, corrupt, duplicate, reorder: **netem**, which also carries
//!   `rate` when one is set (netem's own rate limiter, `netem … rate R`);
//! - only `rate`: **tbf**, so that a bandwidth limit works on kernels without `sch_netem`;
//! - nothing: no root qdisc of ours (the interface keeps the kernel's default).
//!
//! Old-style time fields (netem latency/jitter, tbf buffer and rate table) are in psched
//! "ticks"; [`Psched`] converts with the values of `/proc/net/psched`, as `tc` does.

use std::io;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcOption};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::{
    DefaultNla, NetlinkMessage, NetlinkPayload, Nla, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use rtnetlink::Handle;

use super::{nl_err, NetError};
use crate::spec::model::Impair;

#[cfg(test)]
mod tests;

/// `TCA_OPTIONS` in a tc message (`linux/rtnetlink.h`).
const TCA_OPTIONS: u16 = 2;

// netem attributes that follow `struct tc_netem_qopt` (`linux/pkt_sched.h`).
const TCA_NETEM_REORDER: u16 = 3;
const TCA_NETEM_CORRUPT: u16 = 4;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;

// tbf attributes nested in TCA_OPTIONS.
const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RTAB: u16 = 2;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;

/// `TC_LINKLAYER_ETHERNET`: what `tc` puts in a rate spec unless told `linklayer atm`.
const LINKLAYER_ETHERNET: u8 = 1;
/// netem's packet limit when none is given (`tc`'s and the kernel's default).
const NETEM_LIMIT: u32 = 1000;
/// `sizeof(struct tc_netem_qopt)`: six u32.
const NETEM_QOPT_LEN: usize = 24;
/// `sizeof(struct tc_tbf_qopt)`: two 12-byte rate specs and three u32.
const TBF_QOPT_LEN: usize = 36;
/// Microseconds per second (`TIME_UNITS_PER_SEC` in iproute2).
const USEC_PER_SEC: f64 = 1_000_000.0;

/// Default tbf burst floor: 15000 bytes, ten full-size Ethernet frames (Mininet's `tbf …
/// burst 15k`); a burst below one frame would drop every full-size packet.
pub const TBF_MIN_BURST: u32 = 15_000;
/// Default tbf burst in time: rate/250, the classic "burst ≥ rate/HZ" rule for HZ=250, so
/// that the shaper reaches its rate with coarse timers; the larger of this and
/// [`TBF_MIN_BURST`] is used.
pub const TBF_BURST_HZ: u64 = 250;
/// Default tbf latency: the longest a packet may wait in the queue (`tc … latency 50ms`, the
/// value most `tbf` recipes use); it sets the queue limit in bytes.
pub const TBF_LATENCY_US: u32 = 50_000;

/// The packet scheduler clock of the running kernel: the four hex words of
/// `/proc/net/psched` (`t2us us2t clock_res hz`); `tc_core_init` uses the first three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Psched {
    pub t2us: u32,
    pub us2t: u32,
    pub clock_res: u32,
}

impl Psched {
    /// Parses the text of `/proc/net/psched`.
    pub fn parse(text: &str) -> Option<Psched> {
        let mut words = text
            .split_whitespace()
            .map(|w| u32::from_str_radix(w, 16).ok());
        Some(Psched {
            t2us: words.next()??,
            us2t: words.next()??,
            clock_res: words.next()??,
        })
    }

    /// Reads `/proc/net/psched` of the running kernel.
    pub fn read() -> Result<Psched, NetError> {
        let text = std::fs::read_to_string("/proc/net/psched")
            .map_err(|e| NetError::io("read /proc/net/psched", e))?;
        Psched::parse(&text).ok_or_else(|| {
            NetError::io(
                "read /proc/net/psched",
                io::Error::new(io::ErrorKind::InvalidData, "not three hex words"),
            )
        })
    }

    /// Ticks per microsecond, as `tc_core_init` computes it (including its compatibility
    /// hack for nanosecond clocks).
    fn tick_in_usec(&self) -> f64 {
        let t2us = if self.clock_res == 1_000_000_000 {
            self.us2t
        } else {
            self.t2us
        };
        let clock_factor = f64::from(self.clock_res) / USEC_PER_SEC;
        f64::from(t2us) / f64::from(self.us2t.max(1)) * clock_factor
    }

    /// `tc_core_time2tick`: microseconds to ticks, truncating (saturating past u32).
    pub fn usec_to_ticks(&self, usec: u32) -> u32 {
        (f64::from(usec) * self.tick_in_usec()) as u32
    }

    /// `tc_core_tick2time`: ticks to microseconds, truncating.
    pub fn ticks_to_usec(&self, ticks: u32) -> u32 {
        (f64::from(ticks) / self.tick_in_usec()) as u32
    }

    /// `tc_calc_xmittime`: ticks to send `size` bytes at `rate` bytes per second.
    fn xmittime(&self, rate: u64, size: u32) -> u32 {
        let usec = USEC_PER_SEC * (f64::from(size) / rate.max(1) as f64);
        self.usec_to_ticks(usec as u32)
    }

    /// `tc_calc_xmitsize`: bytes sent in `ticks` at `rate` bytes per second.
    fn xmitsize(&self, rate: u64, ticks: u32) -> u32 {
        (rate as f64 * f64::from(self.ticks_to_usec(ticks)) / USEC_PER_SEC) as u32
    }
}

/// Token bucket settings for a rate-only link (`tc qdisc … tbf rate R burst B latency L`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tbf {
    /// Bits per second.
    pub rate_bps: u64,
    /// Bucket size in bytes.
    pub burst_bytes: u32,
    /// Longest queueing delay in microseconds; sets the queue limit in bytes.
    pub latency_us: u32,
}

impl Tbf {
    /// The defaults for a rate: burst max(rate/250, 15000 bytes), latency 50ms.
    pub fn for_rate(rate_bps: u64) -> Tbf {
        let per_tick = rate_bps / 8 / TBF_BURST_HZ;
        let burst_bytes = u32::try_from(per_tick)
            .unwrap_or(u32::MAX)
            .max(TBF_MIN_BURST);
        Tbf {
            rate_bps,
            burst_bytes,
            latency_us: TBF_LATENCY_US,
        }
    }
}

/// The qdisc types this module drives, and the kernel module that provides each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QdiscType {
    Netem,
    Tbf,
}

impl QdiscType {
    /// The kind string (`TCA_KIND`).
    pub fn name(self) -> &'static str {
        match self {
            QdiscType::Netem => "netem",
            QdiscType::Tbf => "tbf",
        }
    }

    /// The kernel module that implements it.
    pub fn module(self) -> &'static str {
        match self {
            QdiscType::Netem => "sch_netem",
            QdiscType::Tbf => "sch_tbf",
        }
    }
}

/// The root qdisc to put on an interface.
#[derive(Debug, Clone, PartialEq)]
pub enum QdiscKind {
    /// netem with every field of the impairment (rate included, as netem rate).
    Netem(Impair),
    /// tbf, for a link whose only impairment is a rate.
    Tbf(Tbf),
}

impl QdiscKind {
    /// The combination rule (see the module documentation); `None` when nothing is impaired.
    pub fn for_impair(impair: &Impair) -> Option<QdiscKind> {
        let set = |v: Option<u32>| v.is_some_and(|v| v > 0);
        let netem = impair.delay_us.is_some_and(|v| v > 0)
            || impair.jitter_us.is_some_and(|v| v > 0)
            || set(impair.loss_ppm)
            || set(impair.corrupt_ppm)
            || set(impair.duplicate_ppm)
            || set(impair.reorder_ppm);
        match impair.rate_bps.filter(|r| *r > 0) {
            _ if netem => Some(QdiscKind::Netem(impair.clone())),
            Some(rate) => Some(QdiscKind::Tbf(Tbf::for_rate(rate))),
            None => None,
        }
    }

    pub fn qdisc_type(&self) -> QdiscType {
        match self {
            QdiscKind::Netem(_) => QdiscType::Netem,
            QdiscKind::Tbf(_) => QdiscType::Tbf,
        }
    }

    /// The TCA_OPTIONS payload for this qdisc.
    pub fn options(&self, psched: &Psched) -> Vec<u8> {
        match self {
            QdiscKind::Netem(impair) => netem_options(impair, psched),
            QdiscKind::Tbf(tbf) => tbf_options(tbf, psched),
        }
    }
}

/// iproute2's `set_percent`: a fraction scaled to u32 (`rint(per * UINT32_MAX)`). The spec
/// holds parts per million; `ppm / 10000.0` is the same double that `tc` parses from the
/// percent text, so the result is bit-identical.
fn probability(ppm: Option<u32>) -> u32 {
    let per = f64::from(ppm.unwrap_or(0)) / 10_000.0 / 100.0;
    (per * f64::from(u32::MAX)).round_ties_even() as u32
}

/// The inverse of [`probability`], exact for every value it produced.
fn ppm_of(prob: u32) -> Option<u32> {
    let ppm = (f64::from(prob) * 1_000_000.0 / f64::from(u32::MAX)).round() as u32;
    (ppm > 0).then_some(ppm)
}

fn put_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + (4 - len % 4) % 4, 0);
}

fn u32s(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

/// The TCA_OPTIONS payload of `tc qdisc add dev X root netem delay D J loss L% duplicate P%
/// corrupt C% reorder R% rate RATE`: `struct tc_netem_qopt` followed (not nested) by
/// attributes, in `tc`'s order.
///
/// Delay and jitter go in the qopt as ticks (what `tc` ≤ 6.8 sends) and also as
/// TCA_NETEM_LATENCY64 / TCA_NETEM_JITTER64 in nanoseconds (what `tc` ≥ 6.9 sends, Linux
/// ≥ 4.15 prefers). Ticks alone would round 1001us down to 1000.96us, and `plan` would see
/// a difference for ever. Reorder sets gap 1, as `tc` does (reorder needs a delay to act).
pub fn netem_options(p: &Impair, psched: &Psched) -> Vec<u8> {
    let delay_us = p.delay_us.unwrap_or(0);
    let jitter_us = p.jitter_us.unwrap_or(0);
    let ticks = |us: u64| psched.usec_to_ticks(u32::try_from(us).unwrap_or(u32::MAX));
    let reorder = probability(p.reorder_ppm);
    let mut out = u32s(&[
        ticks(delay_us),
        NETEM_LIMIT,
        probability(p.loss_ppm),
        u32::from(reorder > 0),
        probability(p.duplicate_ppm),
        ticks(jitter_us),
    ]);
    let ns = |us: u64| us.saturating_mul(1000).to_ne_bytes();
    if delay_us > 0 || jitter_us > 0 {
        put_attr(&mut out, TCA_NETEM_LATENCY64, &ns(delay_us));
    }
    if jitter_us > 0 {
        put_attr(&mut out, TCA_NETEM_JITTER64, &ns(jitter_us));
    }
    if reorder > 0 {
        put_attr(&mut out, TCA_NETEM_REORDER, &u32s(&[reorder, 0]));
    }
    let corrupt = probability(p.corrupt_ppm);
    if corrupt > 0 {
        put_attr(&mut out, TCA_NETEM_CORRUPT, &u32s(&[corrupt, 0]));
    }
    let rate = p.rate_bps.unwrap_or(0) / 8;
    if rate > 0 {
        let rate32 = match u32::try_from(rate) {
            Ok(r) => r,
            Err(_) => {
                put_attr(&mut out, TCA_NETEM_RATE64, &rate.to_ne_bytes());
                u32::MAX
            }
        };
        // struct tc_netem_rate: rate, packet_overhead, cell_size, cell_overhead.
        put_attr(&mut out, TCA_NETEM_RATE, &u32s(&[rate32, 0, 0, 0]));
    }
    out
}

/// `struct tc_ratespec` as `tc_calc_rtable` leaves it for an Ethernet link: cell_log 3 (for
/// the default MTU 2047), cell_align -1, no overhead or mpu.
fn ratespec(rate: u32) -> Vec<u8> {
    let mut out = vec![3, LINKLAYER_ETHERNET, 0, 0];
    out.extend_from_slice(&(-1i16).to_ne_bytes());
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(&rate.to_ne_bytes());
    out
}

/// The TCA_OPTIONS payload of `tc qdisc add dev X root tbf rate R burst B latency L`: nested
/// TCA_TBF_PARMS (`struct tc_tbf_qopt`), TCA_TBF_BURST, TCA_TBF_RATE64 (at 2^32 bytes/s and
/// above) and TCA_TBF_RTAB (the 256-entry table of `tc_calc_rtable`, which the kernel has
/// not used since 3.8 but still requires).
pub fn tbf_options(t: &Tbf, psched: &Psched) -> Vec<u8> {
    let rate = t.rate_bps / 8;
    let rate32 = u32::try_from(rate).unwrap_or(u32::MAX);
    let limit = rate as f64 * f64::from(t.latency_us) / USEC_PER_SEC + f64::from(t.burst_bytes);
    let mut parms = ratespec(rate32);
    parms.extend_from_slice(&[0; 12]); // peakrate: none
    parms.extend_from_slice(&u32s(&[
        limit as u32,
        psched.xmittime(u64::from(rate32), t.burst_bytes),
        0, // mtu: only with a peakrate
    ]));
    let rtab: Vec<u32> = (1..=256u32)
        .map(|i| psched.xmittime(u64::from(rate32), i << 3))
        .collect();
    let mut out = Vec::with_capacity(1100);
    put_attr(&mut out, TCA_TBF_PARMS, &parms);
    put_attr(&mut out, TCA_TBF_BURST, &t.burst_bytes.to_ne_bytes());
    if rate32 == u32::MAX {
        put_attr(&mut out, TCA_TBF_RATE64, &rate.to_ne_bytes());
    }
    put_attr(&mut out, TCA_TBF_RTAB, &u32s(&rtab));
    out
}

/// What a dump found as the options of a qdisc.
#[derive(Debug, Clone, PartialEq)]
pub enum QdiscParams {
    Netem {
        impair: Impair,
        limit: u32,
    },
    Tbf(ObservedTbf),
    /// Another kind, or options this module cannot read.
    Other,
}

/// tbf as the kernel reports it. The burst is recomputed from the bucket time the kernel
/// keeps (it does not report the byte count), so it may differ by a few bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservedTbf {
    pub rate_bps: u64,
    pub burst_bytes: u32,
    pub limit_bytes: u32,
}

/// One qdisc of a dump (`tc qdisc show`).
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedQdisc {
    pub ifindex: u32,
    pub handle: u32,
    pub parent: u32,
    pub kind: String,
    pub params: QdiscParams,
}

impl ObservedQdisc {
    pub fn is_root(&self) -> bool {
        self.parent == u32::from(TcHandle::ROOT)
    }

    /// The impairment this qdisc applies, in the spec's terms: netem's fields, or a tbf's
    /// rate; `None` for other kinds.
    pub fn impair(&self) -> Option<Impair> {
        match &self.params {
            QdiscParams::Netem { impair, .. } => Some(impair.clone()),
            QdiscParams::Tbf(t) => Some(Impair {
                rate_bps: Some(t.rate_bps),
                ..Impair::default()
            }),
            QdiscParams::Other => None,
        }
    }
}

/// Splits a run of netlink attributes into (type, value) pairs; stops at a malformed one.
fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((kind, &buf[4..len]));
        buf = &buf[((len + 3) & !3).min(buf.len())..];
    }
    out
}

fn u32_at(buf: &[u8], i: usize) -> Option<u32> {
    let bytes = buf.get(i * 4..i * 4 + 4)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

fn u64_of(buf: &[u8]) -> Option<u64> {
    Some(u64::from_ne_bytes(buf.get(..8)?.try_into().ok()?))
}

/// Reads netem options (as the kernel dumps them, or as [`netem_options`] writes them) back
/// into an impairment; zero means absent.
pub fn decode_netem(options: &[u8], psched: &Psched) -> Option<QdiscParams> {
    let qopt = options.get(..NETEM_QOPT_LEN)?;
    let nonzero = |v: u64| (v > 0).then_some(v);
    let mut impair = Impair {
        delay_us: nonzero(u64::from(psched.ticks_to_usec(u32_at(qopt, 0)?))),
        jitter_us: nonzero(u64::from(psched.ticks_to_usec(u32_at(qopt, 5)?))),
        loss_ppm: ppm_of(u32_at(qopt, 2)?),
        duplicate_ppm: ppm_of(u32_at(qopt, 4)?),
        ..Impair::default()
    };
    let mut rate32 = 0;
    let mut rate64 = None;
    for (kind, value) in attrs(&options[NETEM_QOPT_LEN..]) {
        match kind {
            TCA_NETEM_LATENCY64 => impair.delay_us = u64_of(value).and_then(|n| nonzero(n / 1000)),
            TCA_NETEM_JITTER64 => impair.jitter_us = u64_of(value).and_then(|n| nonzero(n / 1000)),
            TCA_NETEM_REORDER => impair.reorder_ppm = u32_at(value, 0).and_then(ppm_of),
            TCA_NETEM_CORRUPT => impair.corrupt_ppm = u32_at(value, 0).and_then(ppm_of),
            TCA_NETEM_RATE => rate32 = u32_at(value, 0).unwrap_or(0),
            TCA_NETEM_RATE64 => rate64 = u64_of(value),
            _ => {}
        }
    }
    impair.rate_bps = nonzero(rate64.unwrap_or(u64::from(rate32)).saturating_mul(8));
    Some(QdiscParams::Netem {
        impair,
        limit: u32_at(qopt, 1)?,
    })
}

/// Reads tbf options (nested TCA_TBF_* attributes) back.
pub fn decode_tbf(options: &[u8], psched: &Psched) -> Option<QdiscParams> {
    let mut parms = None;
    let mut rate64 = None;
    for (kind, value) in attrs(options) {
        match kind {
            TCA_TBF_PARMS if value.len() >= TBF_QOPT_LEN => parms = Some(value),
            TCA_TBF_RATE64 => rate64 = u64_of(value),
            _ => {}
        }
    }
    let parms = parms?;
    let rate = rate64.unwrap_or(u64::from(u32_at(parms, 2)?));
    Some(QdiscParams::Tbf(ObservedTbf {
        rate_bps: rate.saturating_mul(8),
        burst_bytes: psched.xmitsize(rate, u32_at(parms, 7)?),
        limit_bytes: u32_at(parms, 6)?,
    }))
}

fn decode(kind: &str, options: Option<&[u8]>, psched: &Psched) -> QdiscParams {
    let params = match (kind, options) {
        ("netem", Some(o)) => decode_netem(o, psched),
        ("tbf", Some(o)) => decode_tbf(o, psched),
        _ => None,
    };
    params.unwrap_or(QdiscParams::Other)
}

fn index_of(ifindex: u32) -> Result<i32, NetError> {
    i32::try_from(ifindex).map_err(|_| NetError::Netlink {
        what: format!("qdisc on interface {ifindex}"),
        errno: Some(libc::EINVAL),
        message: "interface index out of range".into(),
    })
}

/// A root qdisc message: kind and raw options. The options travel as a `DefaultNla` of type
/// TCA_OPTIONS, whose value is emitted as is.
fn root_message(ifindex: i32, kind: &str, options: Option<Vec<u8>>) -> TcMessage {
    let mut msg = TcMessage::with_index(ifindex);
    msg.header.parent = TcHandle::ROOT;
    msg.attributes.push(TcAttribute::Kind(kind.to_string()));
    if let Some(options) = options {
        let nla = DefaultNla::new(TCA_OPTIONS, options);
        msg.attributes.push(TcAttribute::Other(nla));
    }
    msg
}

/// Sends one request and waits for the kernel's acknowledgement.
async fn request(
    handle: &Handle,
    msg: RouteNetlinkMessage,
    flags: u16,
    what: &str,
) -> Result<(), NetError> {
    let mut req = NetlinkMessage::from(msg);
    req.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    let mut responses = handle.clone().request(req).map_err(nl_err(what))?;
    while let Some(reply) = responses.next().await {
        if let NetlinkPayload::Error(e) = reply.payload {
            if e.code.is_some() {
                return Err(nl_err(what)(rtnetlink::Error::NetlinkError(e)));
            }
        }
    }
    Ok(())
}

/// The error for a qdisc kind the kernel does not have.
fn missing_module(what: String, errno: i32, ty: QdiscType) -> NetError {
    NetError::Netlink {
        what,
        errno: Some(errno),
        message: format!(
            "the kernel has no {} qdisc (module {})",
            ty.name(),
            ty.module()
        ),
    }
}

fn is_missing_kind(err: &NetError) -> bool {
    matches!(err.errno(), Some(libc::ENOENT) | Some(libc::EOPNOTSUPP))
}

/// Puts `kind` as the root qdisc of an interface, replacing whatever root qdisc is there, or
/// changing it in place (`tc qdisc replace dev X root …`). A kernel without the qdisc's
/// module gives an error that names it.
pub async fn replace_root(
    handle: &Handle,
    ifindex: u32,
    kind: &QdiscKind,
    psched: &Psched,
) -> Result<(), NetError> {
    let ty = kind.qdisc_type();
    let what = format!("set {} qdisc on interface {ifindex}", ty.name());
    let msg = root_message(index_of(ifindex)?, ty.name(), Some(kind.options(psched)));
    let flags = NLM_F_CREATE | NLM_F_REPLACE;
    match request(
        handle,
        RouteNetlinkMessage::NewQueueDiscipline(msg),
        flags,
        &what,
    )
    .await
    {
        Err(e) if is_missing_kind(&e) => Err(missing_module(what, e.errno().unwrap_or(0), ty)),
        other => other,
    }
}

/// Removes the root qdisc of an interface, which returns to the kernel's default (`tc qdisc
/// del dev X root`). No root qdisc of its own (ENOENT, or EINVAL for the default one, which
/// has handle 0) means converged.
pub async fn delete_root(handle: &Handle, ifindex: u32) -> Result<(), NetError> {
    let what = format!("delete root qdisc of interface {ifindex}");
    let mut msg = TcMessage::with_index(index_of(ifindex)?);
    msg.header.parent = TcHandle::ROOT;
    match request(
        handle,
        RouteNetlinkMessage::DelQueueDiscipline(msg),
        0,
        &what,
    )
    .await
    {
        Err(e) if matches!(e.errno(), Some(libc::ENOENT) | Some(libc::EINVAL)) => Ok(()),
        other => other,
    }
}

/// Dumps every qdisc of the socket's namespace with its options decoded (`tc qdisc show`).
pub async fn dump(handle: &Handle, psched: &Psched) -> Result<Vec<ObservedQdisc>, NetError> {
    let messages: Vec<TcMessage> = handle
        .qdisc()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(nl_err("dump qdiscs"))?;
    Ok(messages.iter().map(|m| observe(m, psched)).collect())
}

pub fn observe(msg: &TcMessage, psched: &Psched) -> ObservedQdisc {
    let mut kind = String::new();
    let mut options = None;
    for attr in &msg.attributes {
        match attr {
            TcAttribute::Kind(k) => kind = k.clone(),
            // Kinds netlink-packet-route does not know (netem, tbf) keep their TCA_OPTIONS
            // whole as one raw attribute.
            TcAttribute::Options(opts) => {
                if let [TcOption::Other(nla)] = opts.as_slice() {
                    let mut value = vec![0; nla.value_len()];
                    nla.emit_value(&mut value);
                    options = Some(value);
                }
            }
            _ => {}
        }
    }
    ObservedQdisc {
        ifindex: u32::try_from(msg.header.index).unwrap_or(0),
        handle: msg.header.handle.into(),
        parent: msg.header.parent.into(),
        params: decode(&kind, options.as_deref(), psched),
        kind,
    }
}

/// Whether the kernel has a qdisc type, asked without changing anything: a request to create
/// it as the root of `lo` (ifindex 1, present in every namespace) with no options. With
/// NLM_F_CREATE|NLM_F_REPLACE|NLM_F_EXCL the kernel always takes its create path; it looks
/// the kind up first (loading the module if it can) and answers ENOENT when there is none,
/// else it calls the qdisc's init, which for netem and tbf refuses a missing TCA_OPTIONS with
/// EINVAL, so nothing is created or replaced. `/proc/modules` and `/sys/module` cannot tell a
/// built-in qdisc from an absent one, hence this probe. Needs CAP_NET_ADMIN in the socket's
/// namespace; run it on a lab namespace's socket.
pub async fn kernel_has_qdisc(handle: &Handle, ty: QdiscType) -> Result<bool, NetError> {
    const LOOPBACK_IFINDEX: i32 = 1;
    let what = format!("probe for the {} qdisc", ty.name());
    let msg = root_message(LOOPBACK_IFINDEX, ty.name(), None);
    let flags = NLM_F_CREATE | NLM_F_REPLACE | NLM_F_EXCL;
    match request(
        handle,
        RouteNetlinkMessage::NewQueueDiscipline(msg),
        flags,
        &what,
    )
    .await
    {
        Err(e) if e.errno() == Some(libc::EINVAL) => Ok(true),
        Err(e) if is_missing_kind(&e) => Ok(false),
        Err(e) => Err(e),
        // Not expected for netem or tbf; undo it so the probe leaves nothing behind.
        Ok(()) => delete_root(handle, 1).await.map(|()| true),
    }
}
