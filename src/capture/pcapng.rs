//! The capture file: pcapng (what Wireshark and tcpdump read), written with `pcap-file`. One
//! Section Header Block, one Interface Description Block per endpoint (`if_name` is
//! `node:iface`, timestamps in nanoseconds), then an Enhanced Packet Block per packet, with
//! the endpoint's interface id and its direction.

use std::borrow::Cow;
use std::io::{self, BufWriter, Write};
use std::time::Duration;

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, PcapError};

/// `if_tsresol`: timestamps count nanoseconds (10^-9 s); `pcap-file` writes them so.
const TSRESOL_NANOS: u8 = 9;

/// `epb_flags` direction bits: inbound 1, outbound 2.
const INBOUND: u32 = 1;
const OUTBOUND: u32 = 2;

/// A pcapng stream being written.
pub struct Writer {
    inner: PcapNgWriter<BufWriter<Box<dyn Write + Send>>>,
}

impl Writer {
    /// Writes the section header and an interface block for each of `names`, in order: the
    /// `i`th name is interface `i` of [`Self::packet`].
    pub fn new(out: Box<dyn Write + Send>, names: &[String], snaplen: usize) -> io::Result<Writer> {
        let mut inner = PcapNgWriter::new(BufWriter::new(out)).map_err(io_error)?;
        let snaplen = u32::try_from(snaplen).unwrap_or(u32::MAX);
        for name in names {
            let block = InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen,
                options: vec![
                    InterfaceDescriptionOption::IfName(Cow::Owned(name.clone())),
                    InterfaceDescriptionOption::IfTsResol(TSRESOL_NANOS),
                ],
            };
            inner.write_pcapng_block(block).map_err(io_error)?;
        }
        Ok(Writer { inner })
    }

    /// Writes one packet of interface `iface`: `data` is what was captured of it, `len` its
    /// length on the wire.
    pub fn packet(
        &mut self,
        iface: u32,
        timestamp: Duration,
        len: usize,
        data: &[u8],
        outgoing: bool,
    ) -> io::Result<()> {
        let block = EnhancedPacketBlock {
            interface_id: iface,
            timestamp,
            original_len: u32::try_from(len).unwrap_or(u32::MAX),
            data: Cow::Borrowed(data),
            options: vec![EnhancedPacketOption::Flags(if outgoing {
                OUTBOUND
            } else {
                INBOUND
            })],
        };
        self.inner
            .write_pcapng_block(block)
            .map(drop)
            .map_err(io_error)
    }

    /// Hands what is written so far to the output, and flushes that.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.get_mut().flush()
    }
}

fn io_error(e: PcapError) -> io::Error {
    match e {
        PcapError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcapng::{Block, PcapNgReader};
    use std::sync::{Arc, Mutex};

    /// A `Write` whose bytes the test reads afterwards.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn interfaces_are_named_and_packets_keep_interface_length_and_direction() {
        let bytes = Shared::default();
        let names = ["a:eth1".to_string(), "b:eth1".to_string()];
        let mut w = Writer::new(Box::new(bytes.clone()), &names, 262_144).unwrap();
        let ts = Duration::new(1_700_000_000, 123_456_789);
        w.packet(1, ts, 100, &[0xab; 60], true).unwrap();
        w.flush().unwrap();
        let data = bytes.0.lock().unwrap().clone();
        let mut r = PcapNgReader::new(&data[..]).unwrap();
        let mut ifaces = Vec::new();
        let mut packets = Vec::new();
        while let Some(block) = r.next_block() {
            match block.unwrap() {
                Block::InterfaceDescription(i) => ifaces.push(i.into_owned().options),
                Block::EnhancedPacket(p) => {
                    packets.push((p.interface_id, p.timestamp, p.original_len, p.data.len()));
                    assert!(p.options.contains(&EnhancedPacketOption::Flags(OUTBOUND)));
                }
                _ => {}
            }
        }
        assert_eq!(ifaces.len(), 2);
        assert!(ifaces[0].contains(&InterfaceDescriptionOption::IfName("a:eth1".into())));
        assert!(ifaces[1].contains(&InterfaceDescriptionOption::IfName("b:eth1".into())));
        assert!(ifaces[1].contains(&InterfaceDescriptionOption::IfTsResol(9)));
        assert_eq!(packets, vec![(1, ts, 100, 60)]);
    }
}
