//! The encoders against the bytes `tc` (iproute2 6.1) put in TCA_OPTIONS, captured on this
//! kind of host with
//! `ip netns exec qd-cap strace -e trace=sendmsg -e write=3 tc qdisc add dev va root …`
//! (va one end of a veth pair in namespace qd-cap; the kernel refusing netem does not matter,
//! the request is traced before it is sent). `tc` 6.1 takes jitter positionally
//! (`delay 10ms 1ms`), not as `jitter 1ms`.

use super::*;

/// `/proc/net/psched` of the host the captures come from (Linux 6.18, hrtimers): ticks of
/// 64ns, 15.625 per microsecond.
const HOST: Psched = Psched {
    t2us: 0x3e8,
    us2t: 0x40,
    clock_res: 0xf4240,
};

fn hex(s: &str) -> Vec<u8> {
    let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn netem(delay_ms: u64, jitter_us: u64) -> Impair {
    Impair {
        delay_us: (delay_ms > 0).then_some(delay_ms * 1000),
        jitter_us: (jitter_us > 0).then_some(jitter_us),
        ..Impair::default()
    }
}

/// Our netem bytes with the nanosecond LATENCY64/JITTER64 attributes taken out (tc 6.1 does
/// not send them), and the nanoseconds they held.
fn split_ns(bytes: &[u8]) -> (Vec<u8>, Option<u64>, Option<u64>) {
    let mut rest = bytes[..NETEM_QOPT_LEN].to_vec();
    let (mut latency, mut jitter) = (None, None);
    for (kind, value) in attrs(&bytes[NETEM_QOPT_LEN..]) {
        match kind {
            TCA_NETEM_LATENCY64 => latency = u64_of(value),
            TCA_NETEM_JITTER64 => jitter = u64_of(value),
            _ => put_attr(&mut rest, kind, value),
        }
    }
    (rest, latency, jitter)
}

#[test]
fn psched_parses_proc_text() {
    let text = "000003e8 00000040 000f4240 3b9aca00\n";
    assert_eq!(Psched::parse(text), Some(HOST));
    assert_eq!(Psched::parse("zz 1 2"), None);
    assert_eq!(HOST.usec_to_ticks(10_000), 156_250);
    assert_eq!(HOST.ticks_to_usec(156_250), 10_000);
}

#[test]
fn psched_nanosecond_clock_uses_tc_compat_hack() {
    // clock_res 1e9: tc_core_init takes t2us = us2t, so a tick is clock_res/1e6 per us.
    let ns = Psched {
        t2us: 1000,
        us2t: 1,
        clock_res: 1_000_000_000,
    };
    assert_eq!(ns.usec_to_ticks(3), 3000);
}

#[test]
fn netem_delay_matches_tc() {
    // tc qdisc add dev va root netem delay 10ms
    let tc = hex("5a620200e80300000000000000000000 0000000000000000");
    let (rest, latency, jitter) = split_ns(&netem_options(&netem(10, 0), &HOST));
    assert_eq!(rest, tc);
    assert_eq!((latency, jitter), (Some(10_000_000), None));
}

#[test]
fn netem_delay_jitter_matches_tc() {
    // tc qdisc add dev va root netem delay 10ms 1ms
    let tc = hex("5a620200e80300000000000000000000 00000000093d0000");
    let (rest, latency, jitter) = split_ns(&netem_options(&netem(10, 1000), &HOST));
    assert_eq!(rest, tc);
    assert_eq!((latency, jitter), (Some(10_000_000), Some(1_000_000)));
}

#[test]
fn netem_loss_matches_tc() {
    // tc qdisc add dev va root netem loss 0.5%
    let tc = hex("00000000e803000014ae470100000000 0000000000000000");
    let p = Impair {
        loss_ppm: Some(5000),
        ..Impair::default()
    };
    assert_eq!(netem_options(&p, &HOST), tc);
}

#[test]
fn netem_every_probability_matches_tc() {
    // tc qdisc add dev va root netem delay 20ms loss 1% duplicate 0.1% corrupt 0.05% reorder 25%
    let tc = hex(
        "b4c40400e8030000295c8f0201000000 37894100000000000c00030000000040 \
         000000000c0004009cc4200000000000",
    );
    let p = Impair {
        delay_us: Some(20_000),
        loss_ppm: Some(10_000),
        duplicate_ppm: Some(1_000),
        corrupt_ppm: Some(500),
        reorder_ppm: Some(250_000),
        ..Impair::default()
    };
    let (rest, latency, jitter) = split_ns(&netem_options(&p, &HOST));
    assert_eq!(rest, tc);
    assert_eq!((latency, jitter), (Some(20_000_000), None));
}

#[test]
fn netem_rate_matches_tc() {
    // tc qdisc add dev va root netem rate 100mbit
    let tc = hex(
        "00000000e80300000000000000000000 00000000000000001400060020bcbe00 \
         000000000000000000000000",
    );
    let p = Impair {
        rate_bps: Some(100_000_000),
        ..Impair::default()
    };
    assert_eq!(netem_options(&p, &HOST), tc);
}

#[test]
fn netem_delay_jitter_loss_rate_matches_tc() {
    // tc qdisc add dev va root netem delay 5ms 500us loss 2.5% rate 1gbit
    let tc = hex(
        "2d310100e80300006666660600000000 00000000841e00001400060040597307 \
         000000000000000000000000",
    );
    let p = Impair {
        delay_us: Some(5_000),
        jitter_us: Some(500),
        loss_ppm: Some(25_000),
        rate_bps: Some(1_000_000_000),
        ..Impair::default()
    };
    let (rest, latency, jitter) = split_ns(&netem_options(&p, &HOST));
    assert_eq!(rest, tc);
    assert_eq!((latency, jitter), (Some(5_000_000), Some(500_000)));
}

#[test]
fn netem_rate_past_u32_bytes_uses_rate64_like_tc() {
    // tc qdisc add dev va root netem rate 40gbit
    let tc = hex(
        "00000000e80300000000000000000000 00000000000000000c00080000f2052a \
         0100000014000600ffffffff00000000 0000000000000000",
    );
    let p = Impair {
        rate_bps: Some(40_000_000_000),
        ..Impair::default()
    };
    assert_eq!(netem_options(&p, &HOST), tc);
}

#[test]
fn netem_ticks_round_but_nanoseconds_are_exact() {
    // tc qdisc add dev va root netem delay 1001us: 15640 ticks = 1000.96us.
    let tc = hex("183d0000e80300000000000000000000 0000000000000000");
    let p = Impair {
        delay_us: Some(1001),
        ..Impair::default()
    };
    let bytes = netem_options(&p, &HOST);
    let (rest, latency, _) = split_ns(&bytes);
    assert_eq!(rest, tc);
    assert_eq!(latency, Some(1_001_000));
    let Some(QdiscParams::Netem { impair, .. }) = decode_netem(&bytes, &HOST) else {
        panic!("not netem");
    };
    assert_eq!(impair.delay_us, Some(1001));
}

#[test]
fn tbf_10mbit_matches_tc() {
    let t = Tbf::for_rate(10_000_000);
    assert_eq!((t.burst_bytes, t.latency_us), (15_000, 50_000));
    assert_eq!(tbf_options(&t, &HOST), hex(TBF_10MBIT));
}

#[test]
fn tbf_100mbit_matches_tc() {
    let t = Tbf::for_rate(100_000_000);
    assert_eq!((t.burst_bytes, t.latency_us), (50_000, 50_000));
    assert_eq!(tbf_options(&t, &HOST), hex(TBF_100MBIT));
}

#[test]
fn tbf_40gbit_matches_tc_with_rate64() {
    // tc qdisc add dev va root tbf rate 40gbit burst 20000000 latency 50ms: the 32-bit rate
    // saturates, RATE64 carries 5e9 bytes/s, and every rate table entry rounds to 0 ticks.
    let head = hex(
        "2800010003010000ffff0000ffffffff 00000000000000000000000080df1710 \
         2e1c01000000000008000600002d3101 0c00040000f2052a0100000004040200",
    );
    let mut tc = head;
    tc.extend_from_slice(&[0; 1024]);
    let t = Tbf::for_rate(40_000_000_000);
    assert_eq!(t.burst_bytes, 20_000_000);
    assert_eq!(tbf_options(&t, &HOST), tc);
}

#[test]
fn probability_round_trips_every_ppm() {
    for ppm in 1..=1_000_000 {
        assert_eq!(ppm_of(probability(Some(ppm))), Some(ppm), "{ppm} ppm");
    }
    assert_eq!(probability(None), 0);
    assert_eq!(probability(Some(1_000_000)), u32::MAX);
}

#[test]
fn netem_options_decode_back_to_the_impairment() {
    let all = Impair {
        delay_us: Some(20_000),
        jitter_us: Some(1_500),
        loss_ppm: Some(5_000),
        corrupt_ppm: Some(500),
        duplicate_ppm: Some(1_000),
        reorder_ppm: Some(250_000),
        rate_bps: Some(40_000_000_000),
    };
    for p in [all, netem(10, 0), Impair::default()] {
        let got = decode_netem(&netem_options(&p, &HOST), &HOST);
        assert_eq!(
            got,
            Some(QdiscParams::Netem {
                impair: p.clone(),
                limit: 1000
            })
        );
    }
}

#[test]
fn tbf_options_decode_back() {
    for rate in [10_000_000, 100_000_000, 40_000_000_000] {
        let t = Tbf::for_rate(rate);
        let Some(QdiscParams::Tbf(got)) = decode_tbf(&tbf_options(&t, &HOST), &HOST) else {
            panic!("not tbf");
        };
        assert_eq!(got.rate_bps, rate);
        let limit = (rate / 8) as f64 * 0.05 + f64::from(t.burst_bytes);
        assert_eq!(got.limit_bytes, limit as u32);
    }
}

#[test]
fn combination_rule_picks_netem_tbf_or_nothing() {
    let rate_only = Impair {
        rate_bps: Some(10_000_000),
        ..Impair::default()
    };
    assert_eq!(
        QdiscKind::for_impair(&rate_only),
        Some(QdiscKind::Tbf(Tbf::for_rate(10_000_000)))
    );
    let with_loss = Impair {
        loss_ppm: Some(1),
        ..rate_only.clone()
    };
    assert_eq!(
        QdiscKind::for_impair(&with_loss),
        Some(QdiscKind::Netem(with_loss.clone()))
    );
    let zeros = Impair {
        delay_us: Some(0),
        loss_ppm: Some(0),
        rate_bps: Some(0),
        ..Impair::default()
    };
    assert_eq!(QdiscKind::for_impair(&zeros), None);
    assert_eq!(QdiscKind::for_impair(&Impair::default()), None);
}

mod kernel;

/// `tc qdisc add dev va root tbf rate 10mbit burst 15000 latency 50ms` (tc 6.1):
/// TCA_TBF_PARMS, TCA_TBF_BURST, TCA_TBF_RTAB.
const TBF_10MBIT: &str = "\
    2800010003010000ffff0000d0121300 \
    000000000000000000000000bc2e0100 \
    6cdc02000000000008000600983a0000 \
    040402005d000000bb00000028010000 \
    86010000f401000051020000af020000 \
    1c0300007a030000e803000045040000 \
    a3040000100500006e050000dc050000 \
    39060000970600000407000062070000 \
    d00700002d0800008b080000f8080000 \
    56090000c4090000210a00007f0a0000 \
    ec0a00004a0b0000b80b0000150c0000 \
    730c0000e00c00003e0d0000ac0d0000 \
    090e0000670e0000d40e0000320f0000 \
    a00f0000fd0f00005b100000c8100000 \
    2611000094110000f11100004f120000 \
    bc1200001a13000088130000e5130000 \
    43140000b01400000e1500007c150000 \
    d915000037160000a416000002170000 \
    70170000cd1700002b18000098180000 \
    f618000064190000c11900001f1a0000 \
    8c1a0000ea1a0000581b0000b51b0000 \
    131c0000801c0000de1c00004c1d0000 \
    a91d0000071e0000741e0000d21e0000 \
    401f00009d1f0000fb1f000068200000 \
    c62000003421000091210000ef210000 \
    5c220000ba2200002823000085230000 \
    e323000050240000ae2400001c250000 \
    79250000d725000044260000a2260000 \
    102700006d270000cb27000038280000 \
    962800000429000061290000bf290000 \
    2c2a00008a2a0000f82a0000552b0000 \
    b32b0000202c00007e2c0000ec2c0000 \
    492d0000a72d0000142e0000722e0000 \
    e02e00003d2f00009b2f000008300000 \
    66300000d4300000313100008f310000 \
    fc3100005a320000c832000025330000 \
    83330000f03300004e340000bc340000 \
    1935000077350000e435000042360000 \
    b03600000d3700006b370000d8370000 \
    36380000a4380000013900005f390000 \
    cc3900002a3a0000983a0000f53a0000 \
    533b0000c03b00001e3c00008c3c0000 \
    e93c0000473d0000b43d0000123e0000 \
    803e0000dd3e00003b3f0000a83f0000 \
    0640000074400000d14000002f410000 \
    9c410000fa41000068420000c5420000 \
    2343000090430000ee4300005c440000 \
    b94400001745000084450000e2450000 \
    50460000ad4600000b47000078470000 \
    d647000044480000a1480000ff480000 \
    6c490000ca490000384a0000954a0000 \
    f34a0000604b0000be4b00002c4c0000 \
    894c0000e74c0000544d0000b24d0000 \
    204e00007d4e0000db4e0000484f0000 \
    a64f00001450000071500000cf500000 \
    3c5100009a5100000852000065520000 \
    c3520000305300008e530000fc530000 \
    59540000b75400002455000082550000 \
    f05500004d560000ab56000018570000 \
    76570000e4570000415800009f580000 \
    0c5900006a590000d8590000355a0000 \
    935a0000005b00005e5b0000cc5b0000 \
    295c0000875c0000f45c0000525d0000 \
    c05d00001d5e00007b5e0000e85e0000 \
    465f0000b45f0000116000006f600000 \
    dc6000003a610000a861000005620000 \
    63620000d06200002e6300009c630000 \
    f9630000 \
";

/// `tc qdisc add dev va root tbf rate 100mbit burst 50000 latency 50ms` (tc 6.1):
/// TCA_TBF_PARMS, TCA_TBF_BURST, TCA_TBF_RTAB.
const TBF_100MBIT: &str = "\
    2800010003010000ffff000020bcbe00 \
    000000000000000000000000b84c0a00 \
    24f40000000000000800060050c30000 \
    04040200000000000f0000000f000000 \
    1f0000002e0000002e0000003e000000 \
    4e0000004e0000005d0000006d000000 \
    6d0000007d0000007d0000008c000000 \
    9c0000009c000000ab000000bb000000 \
    bb000000cb000000da000000da000000 \
    ea000000fa000000fa00000009010000 \
    09010000190100002801000028010000 \
    38010000480100004801000057010000 \
    67010000670100007701000077010000 \
    860100009601000096010000a5010000 \
    b5010000b5010000c5010000d4010000 \
    d4010000e4010000f4010000f4010000 \
    03020000030200001302000022020000 \
    22020000320200004202000042020000 \
    51020000610200006102000071020000 \
    71020000800200009002000090020000 \
    9f020000af020000af020000bf020000 \
    ce020000ce020000de020000ee020000 \
    ee020000fd020000fd0200000d030000 \
    1c0300001c0300002c0300003c030000 \
    3c0300004b0300005b0300005b030000 \
    6b0300006b0300007a0300008a030000 \
    8a03000099030000a9030000a9030000 \
    b9030000c8030000c8030000d8030000 \
    e8030000e8030000f7030000f7030000 \
    07040000160400001604000026040000 \
    36040000360400004504000055040000 \
    55040000650400006504000074040000 \
    840400008404000093040000a3040000 \
    a3040000b3040000c2040000c2040000 \
    d2040000e2040000e2040000f1040000 \
    f1040000010500001005000010050000 \
    2005000030050000300500003f050000 \
    4f0500004f0500005f0500005f050000 \
    6e0500007e0500007e0500008d050000 \
    9d0500009d050000ad050000bc050000 \
    bc050000cc050000dc050000dc050000 \
    eb050000eb050000fb0500000a060000 \
    0a0600001a0600002a0600002a060000 \
    39060000490600004906000059060000 \
    59060000680600007806000078060000 \
    870600009706000097060000a7060000 \
    b6060000b6060000c6060000d6060000 \
    d6060000e5060000e5060000f5060000 \
    04070000040700001407000024070000 \
    24070000330700004307000043070000 \
    53070000530700006207000072070000 \
    72070000810700009107000091070000 \
    a1070000b0070000b0070000c0070000 \
    d0070000d0070000df070000df070000 \
    ef070000fe070000fe0700000e080000 \
    1e0800001e0800002d0800003d080000 \
    3d0800004d0800004d0800005c080000 \
    6c0800006c0800007b0800008b080000 \
    8b0800009b080000aa080000aa080000 \
    ba080000ca080000ca080000d9080000 \
    d9080000e9080000f8080000f8080000 \
    08090000180900001809000027090000 \
    37090000370900004709000047090000 \
    56090000660900006609000075090000 \
    850900008509000095090000a4090000 \
    a4090000b4090000c4090000c4090000 \
    d3090000d3090000e3090000f2090000 \
    f2090000 \
";
