//! The seccomp filter installed in the program: which system calls the supervisor hears of.
//!
//! Only `connect` with an address length that can hold an IPv4 or IPv6 address (16 to 128
//! bytes) is sent to the supervisor; every other call, and every call of another ABI (i386's
//! `socketcall`, x32), runs in the kernel as if no filter were there. Owns: the BPF program.
//! Must never: stop, slow or fail a call it does not send to the supervisor.

use crate::sys::SockFilter;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
/// The x32 ABI's system calls carry this bit (x86-64 kernels).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;

// Classic BPF opcodes (linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JGT_K: u16 = 0x25;
const RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// The low 32 bits of `args[2]` (little-endian): `connect`'s address length.
const OFF_ARG2_LO: u32 = 16 + 2 * 8;

/// The connect system call's number on this architecture.
pub const NR_CONNECT: i32 = libc::SYS_connect as i32;

/// The filter program.
pub fn program() -> Vec<SockFilter> {
    let f = |code, jt, jf, k| SockFilter { code, jt, jf, k };
    vec![
        f(LD_W_ABS, 0, 0, OFF_ARCH),            // 0: A = arch
        f(JEQ_K, 0, 7, AUDIT_ARCH),             // 1: another ABI -> 9 (allow)
        f(LD_W_ABS, 0, 0, OFF_NR),              // 2: A = nr
        f(JGE_K, 5, 0, X32_SYSCALL_BIT),        // 3: x32 -> 9
        f(JEQ_K, 0, 4, NR_CONNECT as u32),      // 4: not connect -> 9
        f(LD_W_ABS, 0, 0, OFF_ARG2_LO),         // 5: A = addrlen
        f(JGE_K, 0, 2, 16),                     // 6: < 16 (AF_UNIX short names) -> 9
        f(JGT_K, 1, 0, 128),                    // 7: > 128 -> 9
        f(RET_K, 0, 0, SECCOMP_RET_USER_NOTIF), // 8: to the supervisor
        f(RET_K, 0, 0, SECCOMP_RET_ALLOW),      // 9: as without the filter
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program over one call, as the kernel's BPF interpreter would (only the opcodes
    /// the program uses).
    fn run(prog: &[SockFilter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = Vec::new();
        data.extend_from_slice(&nr.to_le_bytes());
        data.extend_from_slice(&arch.to_le_bytes());
        data.extend_from_slice(&0u64.to_le_bytes());
        for a in args {
            data.extend_from_slice(&a.to_le_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        for _ in 0..64 {
            let i = prog[pc];
            match i.code {
                LD_W_ABS => {
                    let k = i.k as usize;
                    acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                    pc += 1;
                }
                JEQ_K | JGE_K | JGT_K => {
                    let hit = match i.code {
                        JEQ_K => acc == i.k,
                        JGE_K => acc >= i.k,
                        _ => acc > i.k,
                    };
                    pc += 1 + usize::from(if hit { i.jt } else { i.jf });
                }
                RET_K => return i.k,
                c => panic!("opcode {c:#x} not modelled"),
            }
        }
        panic!("no return");
    }

    #[test]
    fn only_connects_with_an_ip_sized_address_go_to_the_supervisor() {
        let p = program();
        let connect = |len: u64| run(&p, AUDIT_ARCH, NR_CONNECT as u32, [3, 0x1000, len, 0, 0, 0]);
        assert_eq!(connect(16), SECCOMP_RET_USER_NOTIF, "sockaddr_in");
        assert_eq!(connect(28), SECCOMP_RET_USER_NOTIF, "sockaddr_in6");
        assert_eq!(connect(128), SECCOMP_RET_USER_NOTIF);
        assert_eq!(connect(2), SECCOMP_RET_ALLOW, "AF_UNSPEC / short AF_UNIX");
        assert_eq!(connect(129), SECCOMP_RET_ALLOW);
        // The high half of the length argument is never looked at by the kernel either
        // (socklen_t is 32 bits).
        assert_eq!(connect((1 << 32) | 16), SECCOMP_RET_USER_NOTIF);
        let other = run(&p, AUDIT_ARCH, libc::SYS_read as u32, [3, 0, 16, 0, 0, 0]);
        assert_eq!(other, SECCOMP_RET_ALLOW);
        let x32 = run(
            &p,
            AUDIT_ARCH,
            X32_SYSCALL_BIT | NR_CONNECT as u32,
            [3, 0, 16, 0, 0, 0],
        );
        assert_eq!(x32, SECCOMP_RET_ALLOW, "x32 ABI");
        let i386 = run(&p, 0x4000_0003, 102, [3, 0, 16, 0, 0, 0]);
        assert_eq!(i386, SECCOMP_RET_ALLOW, "another architecture");
    }
}
