//! Classic BPF for seccomp, written with labels: the instructions and `struct seccomp_data`
//! offsets that filters use, and a small assembler that resolves forward jumps.

pub(super) type Insn = libc::sock_filter;

pub(super) const LD_ABS_W: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
pub(super) const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
pub(super) const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
pub(super) const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
pub(super) const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
pub(super) const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// `offsetof(struct seccomp_data, nr)` and `arch`.
pub(super) const NR: u32 = 0;
pub(super) const ARCH: u32 = 4;

/// The x32 ABI's system calls are x86_64's numbers with this bit set.
pub(super) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `seccomp_data.arch` of `arch` (`AUDIT_ARCH_*` in linux/audit.h).
pub(super) fn audit_arch(arch: seccompiler::TargetArch) -> u32 {
    match arch {
        seccompiler::TargetArch::x86_64 => 0xc000_003e,
        seccompiler::TargetArch::aarch64 => 0xc000_00b7,
        seccompiler::TargetArch::riscv64 => 0xc000_00f3,
    }
}

/// The low and high 32-bit words of argument `i` (the architectures topo supports are
/// little-endian).
pub(super) fn arg_low(i: u32) -> u32 {
    16 + 8 * i
}

pub(super) fn arg_high(i: u32) -> u32 {
    arg_low(i) + 4
}

pub(super) fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

/// Where a conditional jump goes: the next instruction or a label.
#[derive(Clone, Copy)]
pub(super) enum To {
    Next,
    Label(usize),
}

/// A program under construction; [`finish`](Asm::finish) resolves the labels.
#[derive(Default)]
pub(super) struct Asm {
    code: Vec<(Insn, To, To)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    /// A new label, bound later with [`bind`](Asm::bind).
    pub(super) fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    /// Binds `label` to the next instruction.
    pub(super) fn bind(&mut self, label: usize) {
        if let Some(l) = self.labels.get_mut(label) {
            *l = Some(self.code.len());
        }
    }

    pub(super) fn stmt(&mut self, code: u16, k: u32) {
        self.code.push((insn(code, 0, 0, k), To::Next, To::Next));
    }

    pub(super) fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.code.push((insn(code, 0, 0, k), jt, jf));
    }

    /// The program; `None` when a jump goes to an unbound label, backwards, or further than
    /// a conditional jump reaches (255 instructions).
    pub(super) fn finish(self) -> Option<Vec<Insn>> {
        let labels = self.labels;
        let offset = |pc: usize, to: To| -> Option<u8> {
            match to {
                To::Next => Some(0),
                To::Label(l) => {
                    let at = labels.get(l).copied().flatten()?;
                    u8::try_from(at.checked_sub(pc + 1)?).ok()
                }
            }
        };
        self.code
            .into_iter()
            .enumerate()
            .map(|(pc, (mut i, jt, jf))| {
                i.jt = offset(pc, jt)?;
                i.jf = offset(pc, jf)?;
                Some(i)
            })
            .collect()
    }
}

/// A classic BPF interpreter for the instructions seccomp filters use, and the kernel's rule
/// for a stack of filters, for the tests: `data` is `struct seccomp_data` as 32-bit words.
#[cfg(test)]
pub(super) mod interp {
    use super::Insn;

    pub(crate) fn run(prog: &[Insn], data: &[u32; 16]) -> u32 {
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = prog[pc];
            let class = u32::from(i.code) & 0x07;
            let op = u32::from(i.code) & 0xf0;
            match class {
                c if c == libc::BPF_LD => {
                    a = data[(i.k / 4) as usize];
                    pc += 1;
                }
                c if c == libc::BPF_ALU && op == libc::BPF_AND => {
                    a &= i.k;
                    pc += 1;
                }
                c if c == libc::BPF_RET => return i.k,
                c if c == libc::BPF_JMP => {
                    let taken = match op {
                        o if o == libc::BPF_JA => {
                            pc += i.k as usize + 1;
                            continue;
                        }
                        o if o == libc::BPF_JEQ => a == i.k,
                        o if o == libc::BPF_JGT => a > i.k,
                        o if o == libc::BPF_JGE => a >= i.k,
                        o if o == libc::BPF_JSET => a & i.k != 0,
                        _ => panic!("unknown jump {:#x}", i.code),
                    };
                    pc += 1 + usize::from(if taken { i.jt } else { i.jf });
                }
                _ => panic!("unknown instruction {:#x}", i.code),
            }
        }
    }

    /// What the kernel answers for a stack of filters (`seccomp_run_filters`): every program
    /// runs, the most recently loaded first, and an answer replaces the one kept only when
    /// its action comes strictly first (KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, …, ALLOW).
    pub(crate) fn run_stack(programs: &[Vec<Insn>], data: &[u32; 16]) -> u32 {
        let action = |r: u32| (r & libc::SECCOMP_RET_ACTION_FULL) as i32;
        let mut ret = libc::SECCOMP_RET_ALLOW;
        for p in programs.iter().rev() {
            let cur = run(p, data);
            if action(cur) < action(ret) {
                ret = cur;
            }
        }
        ret
    }
}
