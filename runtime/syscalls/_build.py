"""cffi API-mode (out-of-line) build of the syscalls Python 3.11 lacks.

Compiled once at install time into ``ketch.runtime.syscalls._native``; at run
time nothing is parsed, the extension is simply imported. Each C function
returns -1 and leaves ``errno`` set on failure, as the kernel does.
"""

from cffi import FFI

CDEF = """
int unshare(int flags);
int setns(int fd, int nstype);
int mount(const char *source, const char *target, const char *filesystemtype,
          unsigned long mountflags, const void *data);
int umount2(const char *target, int flags);
int sethostname(const char *name, size_t len);
int setdomainname(const char *name, size_t len);
int ketch_pivot_root(const char *new_root, const char *put_old);
int ketch_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4,
                unsigned long a5);
int ketch_setresuid(unsigned int r, unsigned int e, unsigned int s);
int ketch_setresgid(unsigned int r, unsigned int e, unsigned int s);
int ketch_close_range(unsigned int first, unsigned int last, unsigned int flags);
int ketch_capset(unsigned int version, int pid, const unsigned int *data6);
int ketch_capget(unsigned int version, int pid, unsigned int *data6);
int ketch_personality(unsigned long persona);
int ketch_ioprio_set(int which, int who, int ioprio);
long ketch_join_session_keyring(const char *name);
long long ketch_fstatfs_type(int fd);
int ketch_mount_setattr(int dirfd, const char *path, unsigned int flags, uint64_t attr_set,
                        uint64_t attr_clr, uint64_t propagation, uint64_t userns_fd);
int ketch_open_tree(int dirfd, const char *path, unsigned int flags);
int ketch_move_mount(int from_dirfd, const char *from_path, int to_dirfd,
                     const char *to_path, unsigned int flags);
int ketch_bpf_prog_load(unsigned int prog_type, const void *insns, unsigned int insn_cnt,
                        const char *license, char *log, unsigned int log_size);
int ketch_bpf_prog_attach(int target_fd, int prog_fd, unsigned int attach_type,
                          unsigned int flags);
int ketch_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);

/* libseccomp (seccomp.h) */
typedef void *scmp_filter_ctx;
enum scmp_filter_attr { SCMP_FLTATR_CTL_NNP, SCMP_FLTATR_CTL_TSYNC, SCMP_FLTATR_CTL_LOG,
                        SCMP_FLTATR_CTL_SSB, ... };
enum scmp_compare { SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE,
                    SCMP_CMP_GT, SCMP_CMP_MASKED_EQ, ... };
struct scmp_arg_cmp { unsigned int arg; enum scmp_compare op; uint64_t datum_a;
                      uint64_t datum_b; };
scmp_filter_ctx seccomp_init(uint32_t def_action);
void seccomp_release(scmp_filter_ctx ctx);
uint32_t seccomp_arch_resolve_name(const char *arch_name);
int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
int seccomp_syscall_resolve_name(const char *name);
int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
                           unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array);
int seccomp_attr_set(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value);
int seccomp_load(const scmp_filter_ctx ctx);
int seccomp_notify_fd(const scmp_filter_ctx ctx);
"""

SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sched.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <linux/capability.h>
#include <linux/bpf.h>
#include <string.h>
#include <seccomp.h>

/* Raw syscalls: a multi-threaded libc wrapper would broadcast set*id to all
 * threads (fine), but pivot_root/close_range/capset have no glibc wrapper. */
static int ketch_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}
static int ketch_prctl(int option, unsigned long a2, unsigned long a3,
                       unsigned long a4, unsigned long a5) {
    return prctl(option, a2, a3, a4, a5);
}
static int ketch_setresuid(unsigned int r, unsigned int e, unsigned int s) {
    return (int)syscall(SYS_setresuid, r, e, s);
}
static int ketch_setresgid(unsigned int r, unsigned int e, unsigned int s) {
    return (int)syscall(SYS_setresgid, r, e, s);
}
static int ketch_close_range(unsigned int first, unsigned int last, unsigned int flags) {
#ifdef SYS_close_range
    return (int)syscall(SYS_close_range, first, last, flags);
#else
    errno = ENOSYS; return -1;
#endif
}
static int ketch_personality(unsigned long persona) {
    return (int)syscall(SYS_personality, persona);
}
static int ketch_ioprio_set(int which, int who, int ioprio) {
    return (int)syscall(SYS_ioprio_set, which, who, ioprio);
}
/* keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a fresh session keyring */
static long ketch_join_session_keyring(const char *name) {
    return syscall(SYS_keyctl, 1, name);
}
/* the filesystem type (statfs(2) f_type) of an open fd, or -1 */
static long long ketch_fstatfs_type(int fd) {
    struct statfs st;
    if (fstatfs(fd, &st) < 0) return -1;
    return (long long)st.f_type;
}
/* The new mount API (Linux 5.2 / 5.12): no glibc wrappers in Debian 12. */
struct ketch_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };
static int ketch_mount_setattr(int dirfd, const char *path, unsigned int flags,
                               uint64_t attr_set, uint64_t attr_clr, uint64_t propagation,
                               uint64_t userns_fd) {
#ifdef SYS_mount_setattr
    struct ketch_mount_attr attr = { attr_set, attr_clr, propagation, userns_fd };
    return (int)syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof attr);
#else
    errno = ENOSYS; return -1;
#endif
}
static int ketch_open_tree(int dirfd, const char *path, unsigned int flags) {
#ifdef SYS_open_tree
    return (int)syscall(SYS_open_tree, dirfd, path, flags);
#else
    errno = ENOSYS; return -1;
#endif
}
static int ketch_move_mount(int from_dirfd, const char *from_path, int to_dirfd,
                            const char *to_path, unsigned int flags) {
#ifdef SYS_move_mount
    return (int)syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags);
#else
    errno = ENOSYS; return -1;
#endif
}
/* bpf(BPF_PROG_LOAD): a program of prog_type from insn_cnt 8-byte instructions;
 * the verifier's log goes to log (may be NULL). Returns the program fd. */
static int ketch_bpf_prog_load(unsigned int prog_type, const void *insns,
                               unsigned int insn_cnt, const char *license,
                               char *log, unsigned int log_size) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = prog_type;
    attr.insns = (unsigned long)insns;
    attr.insn_cnt = insn_cnt;
    attr.license = (unsigned long)license;
    if (log != NULL && log_size > 0) {
        attr.log_buf = (unsigned long)log;
        attr.log_size = log_size;
        attr.log_level = 1;
    }
    return (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
}
/* bpf(BPF_PROG_ATTACH): attach prog_fd to the cgroup open at target_fd */
static int ketch_bpf_prog_attach(int target_fd, int prog_fd, unsigned int attach_type,
                                 unsigned int flags) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.target_fd = target_fd;
    attr.attach_bpf_fd = prog_fd;
    attr.attach_type = attach_type;
    attr.attach_flags = flags;
    return (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof(attr));
}
/* openat2(2) (Linux 5.6): glibc 2.36 has no wrapper; struct open_how from linux/openat2.h */
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
struct ketch_open_how { uint64_t flags; uint64_t mode; uint64_t resolve; };
static int ketch_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                         uint64_t resolve) {
    struct ketch_open_how how = { flags, mode, resolve };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}
/* data6: effective, permitted, inheritable for the low then the high 32 caps */
static int ketch_capset(unsigned int version, int pid, const unsigned int *d) {
    struct __user_cap_header_struct h = { version, pid };
    struct __user_cap_data_struct data[2] = {
        { d[0], d[1], d[2] }, { d[3], d[4], d[5] } };
    return (int)syscall(SYS_capset, &h, data);
}
static int ketch_capget(unsigned int version, int pid, unsigned int *d) {
    struct __user_cap_header_struct h = { version, pid };
    struct __user_cap_data_struct data[2];
    int rc = (int)syscall(SYS_capget, &h, data);
    if (rc == 0) {
        d[0] = data[0].effective; d[1] = data[0].permitted; d[2] = data[0].inheritable;
        d[3] = data[1].effective; d[4] = data[1].permitted; d[5] = data[1].inheritable;
    }
    return rc;
}
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source("ketch.runtime.syscalls._native", SOURCE, libraries=["seccomp"])

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
