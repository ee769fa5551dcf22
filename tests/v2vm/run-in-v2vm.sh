#!/usr/bin/env bash
# run-in-v2vm.sh - run a command inside a throw-away QEMU guest that has a
# pure cgroup v2 hierarchy with real controllers (cpuset cpu io memory pids ...).
#
#   usage: run-in-v2vm.sh <host-dir> -- <command> [args...]
#
# Meant for a CI "cgroup v2 lane" on hosts that cannot offer cgroup v2 (hybrid
# or v1 hosts, containers). The guest boots Debian's stock kernel (package
# linux-image-amd64) with a tiny busybox initramfs and sees the HOST's files:
#
#   /                 host /, shared read-only over virtio-9p, with a tmpfs
#                     overlay on top: everything is writable, writes are thrown
#                     away when the VM exits (e.g. ~/.cache, /etc, /var/lib)
#   <host-dir>        shared READ-WRITE over 9p: writes land on the host; this
#                     is the command's working directory
#   /tmp /run         fresh, empty tmpfs (real tmpfs: overlayfs, xattrs ... work)
#   $V2VM_KEEP paths  host paths bind-mounted read-only on top of that, e.g. a
#                     tool installed under /tmp (otherwise hidden by the tmpfs)
#   /sys/fs/cgroup    cgroup2 only (kernel booted with cgroup_no_v1=all), every
#                     available controller enabled in the root's subtree_control
#   /dev/vda          (if V2VM_DISK is not 0) an empty sparse scratch disk, so
#                     io.max / io.weight have a real block device to act on
#   /lib/modules      the guest kernel's modules; the kernel autoloads them
#                     (veth, bridge, nf_tables, tun, ...) via busybox modprobe
#
# The command runs as root (uid 0, in the root cgroup, not PID 1) with stdin
# from /dev/null, via the host's /bin/sh, in <host-dir>, with a clean
# environment (see V2VM_ENV). Its stdout and stderr are streamed to this
# script's stdout and stderr (two virtio-serial ports: no tty, byte-exact) and
# this script exits with the command's exit status. 125 means the VM itself
# failed (the guest console log is printed), 124 means V2VM_TIMEOUT hit.
#
# Speed (measured under TCG = software emulation, the fallback when KVM is
# not usable, 2 host cores): 3.3-4.5 s from start to the result of a trivial
# command; JIT-heavy code (V8/deno) runs ~35x slower than native; every
# uncached 9p file open/stat costs ~1-2.5 ms. With KVM all of this should be
# several times faster (not measured: the author's host had no usable KVM). For deno: type-check on the host first (`deno check`, the guest
# reuses the host's DENO_DIR cache read-only) or use --no-check in the guest.
#
# Tunables (environment):
#   V2VM_MEM=2048        guest RAM in MiB (the tmpfs overlay and /tmp live in it)
#   V2VM_CPUS=<nproc>    guest vCPUs
#   V2VM_TIMEOUT=0       kill the VM after this many seconds (0 = never)
#   V2VM_KEEP=a:b        colon-separated host paths to make visible read-only
#                        inside the fresh /tmp or /run, e.g. V2VM_KEEP=/tmp/deno
#   V2VM_ENV="A B"       names of extra host environment variables to pass in
#                        (always passed when set: PATH HOME TERM LANG LC_ALL TZ CI)
#   V2VM_DISK=1G         size of the sparse scratch disk /dev/vda (0 = none)
#   V2VM_NET=0           1 = user-mode (slirp) NIC eth0 10.0.2.15/24, gw 10.0.2.2,
#                        DNS 10.0.2.3: outgoing TCP/UDP through the host
#   V2VM_ACCEL=auto      kvm, tcg, or auto (kvm if /dev/kvm is usable and the
#                        CPU shows vmx/svm, else tcg)
#   V2VM_WORK_CACHE=loose  9p cache mode of <host-dir>; "mmap" if the host may
#                        change files there while the command runs
#   V2VM_MACHINE=q35     QEMU machine type
#   V2VM_CACHE=/var/cache/denobox-v2vm   where kernel + initramfs are cached
#                        (non-root default: ~/.cache/denobox-v2vm)
#   V2VM_KERNEL_PKG=linux-image-amd64   Debian package that provides the kernel
#                        (needs 9p as modules/builtin: the -cloud- flavour lacks it)
#   V2VM_REBUILD=0       1 = re-download the kernel and rebuild the cache
#   V2VM_DEBUG=0         1 = show the guest's kernel console and qemu's stderr
#
# Host requirements (Debian 12): `apt-get install --no-install-recommends
# qemu-system-x86` plus what every Debian has: apt-get, dpkg-deb, flock, gzip,
# sha256sum, GNU grep, and xz-utils (optional; enables the faster PVH boot).
# On first use (and with V2VM_REBUILD=1) the script downloads, with `apt-get
# download` (nothing is installed, so no hooks run on the host), the kernel
# package and busybox-static, and builds <cache>/<kernel-pkg>_<version>/:
# vmlinuz, vmlinux, initramfs-<hash>.gz, root/lib/modules/<kver> (~200 MB).
# That needs `apt-get update` to have run; later runs only read the cache.
# Run it as root: the guest then reads every host file and creates root-owned
# files in <host-dir> (as non-root, qemu can only share what the user can read).
#
# Note for sandboxes: a /dev/kvm without vmx/svm in /proc/cpuinfo may be PVM
# (kvm_pvm module; e.g. some Firecracker-based sandboxes). It only runs
# PVM-enabled guest kernels: a stock kernel hangs after "Probing EDD" (bzImage)
# or dies with "KVM internal error. Suberror: 1 ... emulation failure" (PVH).
# Hence the vmx/svm check for V2VM_ACCEL=auto.
# shellcheck disable=SC2054  # commas inside qemu arguments are intended
set -euo pipefail

die() { echo "run-in-v2vm: $*" >&2; exit 125; }

# ---------------------------------------------------------------- arguments
[[ $# -ge 3 && $2 == -- ]] || die "usage: $0 <host-dir> -- <command> [args...]"
WORKDIR=$(realpath -e -- "$1") || die "no such directory: $1"
[[ -d $WORKDIR ]] || die "not a directory: $WORKDIR"
[[ $WORKDIR != / ]] || die "the working directory must not be /"
shift 2

MEM=${V2VM_MEM:-2048}
CPUS=${V2VM_CPUS:-$(nproc)}
TIMEOUT=${V2VM_TIMEOUT:-0}
DISK=${V2VM_DISK:-1G}
NET=${V2VM_NET:-0}
ACCEL=${V2VM_ACCEL:-auto}
if [[ $EUID == 0 ]]; then
    CACHE=${V2VM_CACHE:-/var/cache/denobox-v2vm}
    SECMODEL=passthrough     # guest root == host root: real owners, xattrs
else
    CACHE=${V2VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/denobox-v2vm}
    SECMODEL=none            # as passthrough, but ignore failing chown etc.
fi
KPKG=${V2VM_KERNEL_PKG:-linux-image-amd64}
DEBUG=${V2VM_DEBUG:-0}
WORK_CACHE=${V2VM_WORK_CACHE:-loose}
MACHINE=${V2VM_MACHINE:-q35}

command -v qemu-system-x86_64 >/dev/null ||
    die "qemu-system-x86_64 not found (apt-get install --no-install-recommends qemu-system-x86)"

# KVM for a stock kernel needs hardware virtualisation (vmx/svm) visible to
# this host; a /dev/kvm without it is PVM (see the header): use TCG there.
if [[ $ACCEL == auto ]]; then
    if [[ -r /dev/kvm && -w /dev/kvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
        ACCEL=kvm
    else
        ACCEL=tcg
    fi
fi
if [[ $ACCEL == kvm ]]; then CPU=host; else CPU=max; fi
if [[ $ACCEL == tcg && $DEBUG == 1 ]]; then
    echo "run-in-v2vm: no usable KVM, using TCG (software emulation, slower)" >&2
fi

# Single-quote a string for a POSIX shell.
shquote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# ------------------------------------------------------- guest init scripts
# Stage 1 runs as PID 1 from the initramfs: it loads the virtio/9p/overlay
# modules, assembles the guest's root under /newroot and switch_roots into it.
# (Inside the guest: the busybox shell; $V2VM_* come from the ctl share.)
read -r -d '' STAGE1 <<'EOF' || true
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

fail() { echo "v2vm-init: FAILED: $*"; poweroff -f; sleep 10; }
p9() { mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000,$3" "$1" "$2"; }

modprobe -a virtio_pci virtio_console virtio_blk 9pnet_virtio 9p overlay ||
    fail "modprobe"       # (keep in sync with INITRAMFS_MODULES)

# The control share: config, command script; the guest writes "rc" into it.
mkdir -p /ctl /lower /rw /newroot
p9 v2vm_ctl /ctl cache=none || fail "mount ctl share"
. /ctl/config

# Host / read-only (cache=loose: it is not expected to change under us),
# writable through an overlay whose upper layer is a tmpfs.
p9 v2vm_root /lower ro,cache=loose || fail "mount host root"
mount -t tmpfs -o mode=0755 v2vm-upper /rw && mkdir /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work \
    v2vm-root /newroot || fail "mount overlay root"

cd /newroot || fail "cd /newroot"
mount --move /dev dev
mount --move /proc proc
mount --move /sys sys
mkdir -p dev/pts dev/shm dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs dev/shm
mount -t mqueue mqueue dev/mqueue
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 sys/fs/cgroup ||
    fail "mount cgroup2"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs tmp
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs run
mkdir -p run/v2vm/bin run/v2vm/ctl
mount --move /ctl run/v2vm/ctl

# Host paths to re-expose read-only on top of the fresh /tmp and /run.
while IFS= read -r p; do
    [ -n "$p" ] || continue
    if [ -d "/lower$p" ]; then mkdir -p ".$p"; else mkdir -p ".${p%/*}" && touch ".$p"; fi
    mount --bind "/lower$p" ".$p" || fail "bind $p"
done < run/v2vm/ctl/keep

# The working directory, read-write.
mkdir -p ".$V2VM_WORKDIR"
p9 v2vm_work ".$V2VM_WORKDIR" "cache=$V2VM_WORK_CACHE" || fail "mount work share"

# Kernel modules of the guest kernel (kept in the host's cache) + autoload.
mkdir -p "lib/modules/$(uname -r)"
mount --bind "/lower$V2VM_MODDIR" "lib/modules/$(uname -r)" || fail "bind modules"
cp /bin/busybox /stage2 run/v2vm/bin/
ln -s busybox run/v2vm/bin/modprobe
echo /run/v2vm/bin/modprobe > proc/sys/kernel/modprobe   # /proc was moved

exec switch_root /newroot /run/v2vm/bin/busybox sh /run/v2vm/bin/stage2
fail "switch_root"
EOF

# Stage 2 runs as PID 1 inside the assembled root: enables the cgroup
# controllers, runs the command, reports its exit status, powers off.
read -r -d '' STAGE2 <<'EOF' || true
bb=/run/v2vm/bin/busybox
ctl=/run/v2vm/ctl
. $ctl/config
$bb hostname v2vm
$bb ip link set lo up
if [ "$V2VM_NET" = 1 ]; then
    $bb modprobe virtio_net
    $bb ip link set eth0 up
    $bb ip addr add 10.0.2.15/24 dev eth0
    $bb ip route add default via 10.0.2.2
    $bb rm -f /etc/resolv.conf
    echo "nameserver 10.0.2.3" > /etc/resolv.conf
fi

# Enable every controller the kernel offers for the children of the root.
for c in $($bb cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control ||
        echo "v2vm: could not enable cgroup controller $c"
done

# /dev node of the virtio-serial port named $1.
port() {
    for d in /sys/class/virtio-ports/*; do
        [ "$($bb cat "$d/name")" = "$1" ] && echo "/dev/${d##*/}" && return
    done
    echo /dev/console
}
out=$(port v2vm.stdout)
err=$(port v2vm.stderr)

# Run the command script with the host's /bin/sh, not busybox sh: Debian's
# static busybox prefers its own applets to $PATH (its "sh -c ip" is busybox ip).
cd /
$bb env -i /bin/sh $ctl/cmd </dev/null >"$out" 2>"$err"
echo $? > $ctl/rc
$bb sync
$bb poweroff -f
EOF

# ------------------------------------------------------------ kernel cache
# Builds <cache>/<pkg>_<version>/: vmlinuz, root/lib/modules/<kver>/ (modules
# + busybox depmod metadata), busybox. Downloads via apt-get download only.
build_kernel_cache() {
    local pkg ver dir tmp kver off
    command -v apt-get >/dev/null || die "apt-get needed to build the cache"
    # linux-image-amd64 is a meta package: find the real kernel package.
    pkg=$(apt-cache depends "$KPKG" 2>/dev/null |
          awk '/^ *Depends: linux-image-[0-9]/ {print $2; exit}')
    [[ -n $pkg ]] || pkg=$KPKG
    ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | awk '/^Version:/ {print $2; exit}')
    if [[ -z $ver && $EUID == 0 ]]; then
        # A fresh machine or container without package lists: fetch them once.
        echo "run-in-v2vm: apt knows no $pkg yet: apt-get update" >&2
        apt-get -q -o DPkg::Lock::Timeout=300 update >&2 || true
        pkg=$(apt-cache depends "$KPKG" 2>/dev/null |
              awk '/^ *Depends: linux-image-[0-9]/ {print $2; exit}')
        [[ -n $pkg ]] || pkg=$KPKG
        ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | awk '/^Version:/ {print $2; exit}')
    fi
    [[ -n $ver ]] || die "apt knows no package $pkg (run apt-get update?)"
    dir=$CACHE/${pkg}_$ver
    if [[ ! -e $dir/.complete || $REBUILD == 1 ]]; then
        echo "run-in-v2vm: building $dir (downloading $pkg $ver, busybox-static)" >&2
        rm -rf "$dir" "$dir.tmp"
        tmp=$dir.tmp
        mkdir -p "$tmp/deb" "$tmp/x"
        # (as root, apt would drop to user _apt, who cannot write here)
        (cd "$tmp/deb" && apt-get -q -o APT::Sandbox::User="$(id -un)" download "$pkg" busybox-static >&2) ||
            die "apt-get download $pkg busybox-static failed"
        for f in "$tmp"/deb/*.deb; do dpkg-deb -x "$f" "$tmp/x"; done
        kver=$(ls "$tmp/x/lib/modules")
        [[ -f $tmp/x/boot/vmlinuz-$kver ]] || die "no vmlinuz in $pkg"
        grep -qE '^CONFIG_9P_FS=[ym]' "$tmp/x/boot/config-$kver" ||
            die "$pkg has no 9p filesystem support (CONFIG_9P_FS)"
        mv "$tmp/x/boot/vmlinuz-$kver" "$tmp/vmlinuz"
        mv "$tmp/x/bin/busybox" "$tmp/busybox"
        # Also keep the uncompressed ELF vmlinux (xz-compressed inside the
        # bzImage): qemu boots it through its PVH entry point, which skips
        # real mode and decompression (saves ~3 s per boot under TCG). Needs
        # xz-utils (busybox's xz lacks the x86 BCJ filter); optional.
        off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$tmp/vmlinuz" | head -n1 | cut -d: -f1)
        if [[ -n $off ]] && command -v xz >/dev/null; then
            # xz exits 1 on the bytes that trail the stream; check the result.
            tail -c +$((off + 1)) "$tmp/vmlinuz" | xz -dc > "$tmp/vmlinux" 2>/dev/null || true
            [[ $(head -c4 "$tmp/vmlinux" | od -An -tx1 | tr -d ' ') == 7f454c46 ]] || rm -f "$tmp/vmlinux"
        fi
        mv "$tmp/x/boot/config-$kver" "$tmp/config"
        mkdir -p "$tmp/root/lib/modules"
        mv "$tmp/x/lib/modules/$kver" "$tmp/root/lib/modules/"
        # Drop drivers for hardware a VM never has (saves ~230 MB).
        (cd "$tmp/root/lib/modules/$kver/kernel" &&
         rm -rf sound drivers/{gpu,media,infiniband,iio,comedi,staging,usb,hid,input} \
                drivers/{hwmon,bluetooth,isdn,video,mmc,mtd,nfc,net/wireless,net/ethernet,net/can})
        "$tmp/busybox" depmod -b "$tmp/root" "$kver"
        echo "$kver" > "$tmp/kver"
        rm -rf "$tmp/deb" "$tmp/x"
        touch "$tmp/.complete"
        mv "$tmp" "$dir"
    fi
    ln -sfn "${dir##*/}" "$CACHE/current"
}

# Builds the initramfs for the current kernel dir if the init scripts changed.
# It holds busybox, the two stage scripts and the modules stage 1 loads.
INITRAMFS_MODULES="virtio_pci virtio_console virtio_blk 9pnet_virtio 9p overlay"
build_initramfs() {
    local dir=$1 kver hash st f
    kver=$(cat "$dir/kver")
    hash=$(printf '%s\n' "$STAGE1" "$STAGE2" "$INITRAMFS_MODULES" | sha256sum | cut -c1-16)
    INITRD=$dir/initramfs-$hash.gz
    [[ -e $INITRD ]] && return
    rm -f "$dir"/initramfs-*.gz          # built by other versions of this script
    st=$(mktemp -d "$dir/initramfs.XXXXXX")
    mkdir -p "$st"/{bin,dev,proc,sys,lib/modules/$kver}
    cp "$dir/busybox" "$st/bin/busybox"
    printf '%s\n' "$STAGE1" > "$st/init"
    printf '%s\n' "$STAGE2" > "$st/stage2"
    chmod 755 "$st/init"
    # The modules stage 1 needs, plus everything they depend on.
    for f in $(awk -v want="$INITRAMFS_MODULES" '
            BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) need[w[i]] = 1 }
            { m = $1; sub(/:$/, "", m); sub(/.*\//, "", m); sub(/\.ko$/, "", m); gsub(/-/, "_", m)
              if (m in need) { sub(/:$/, "", $1); for (i = 1; i <= NF; i++) print $i } }' \
            "$dir/root/lib/modules/$kver/modules.dep" | sort -u); do
        mkdir -p "$st/lib/modules/$kver/${f%/*}"
        cp "$dir/root/lib/modules/$kver/$f" "$st/lib/modules/$kver/$f"
    done
    "$dir/busybox" depmod -b "$st" "$kver"
    (cd "$st" && find . | "$dir/busybox" cpio -o -H newc 2>/dev/null) | gzip -1 > "$INITRD.tmp"
    mv "$INITRD.tmp" "$INITRD"
    rm -rf "$st"
}

REBUILD=${V2VM_REBUILD:-0}
mkdir -p "$CACHE" || die "cannot create $CACHE"
exec 9>"$CACHE/.lock"
flock 9                                  # one builder at a time
if [[ $REBUILD == 1 || ! -e $CACHE/current/.complete ]]; then
    build_kernel_cache
fi
KDIR=$(realpath "$CACHE/current")
build_initramfs "$KDIR"
flock -u 9
exec 9>&-

# ------------------------------------------------------------------- run
TMP=$(mktemp -d "${TMPDIR:-/tmp}/v2vm.XXXXXX")
QPID='' CATS=''
cleanup() {
    if [[ -n $QPID ]]; then kill "$QPID" 2>/dev/null || true; wait "$QPID" 2>/dev/null || true; fi
    if [[ -n $CATS ]]; then kill $CATS 2>/dev/null || true; wait $CATS 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir "$TMP/ctl"
{   # Shell config for stage 1 (host paths as seen from the guest).
    echo "V2VM_WORKDIR=$(shquote "$WORKDIR")"
    echo "V2VM_MODDIR=$(shquote "$KDIR/root/lib/modules/$(cat "$KDIR/kver")")"
    echo "V2VM_NET=$(shquote "$NET")"
    echo "V2VM_WORK_CACHE=$(shquote "$WORK_CACHE")"
} > "$TMP/ctl/config"
# Read-only keeps: one realpath per line.
: > "$TMP/ctl/keep"
IFS=: read -r -a keeps <<< "${V2VM_KEEP:-}"
for p in "${keeps[@]}"; do
    [[ -n $p ]] || continue
    realpath -e -- "$p" >> "$TMP/ctl/keep" || die "V2VM_KEEP: no such path: $p"
done
{   # The command, run by the guest's (= host's) /bin/sh with an empty environment.
    echo "export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for v in PATH HOME TERM LANG LC_ALL TZ CI ${V2VM_ENV:-}; do
        if [[ -v $v ]]; then echo "export $(shquote "$v=${!v}")"; fi
    done
    echo "export V2VM=1"
    echo "cd $(shquote "$WORKDIR") || exit 125"
    printf 'exec'; for a in "$@"; do printf ' %s' "$(shquote "$a")"; done; echo
} > "$TMP/ctl/cmd"

# stdout/stderr of the command arrive on two FIFOs; cat forwards them.
mkfifo "$TMP/out" "$TMP/err"
cat "$TMP/out" & CATS="$!"
cat "$TMP/err" >&2 & CATS="$CATS $!"

APPEND="console=ttyS0 panic=-1 cgroup_no_v1=all rdinit=/init"
if [[ $DEBUG == 1 ]]; then   # guest console on our stderr
    CONSOLE=(-chardev "file,id=con,path=/dev/stderr,append=on" -serial chardev:con)
    APPEND+=" loglevel=7"
else                         # guest console into a log, shown on failure
    CONSOLE=(-chardev "file,id=con,path=$TMP/console.log" -serial chardev:con)
    APPEND+=" quiet loglevel=3"
fi

KERNEL=$KDIR/vmlinuz
if [[ -e $KDIR/vmlinux ]]; then KERNEL=$KDIR/vmlinux; fi   # PVH boot, see above
BIOS=()                      # qboot: a minimal firmware that boots faster
if [[ -e /usr/share/qemu/qboot.rom ]]; then BIOS=(-bios /usr/share/qemu/qboot.rom); fi
QEMU=(qemu-system-x86_64
    -machine "$MACHINE,accel=$ACCEL" -cpu "$CPU" -m "$MEM" -smp "$CPUS"
    -nodefaults -no-user-config -display none -no-reboot
    "${BIOS[@]}"
    -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND"
    "${CONSOLE[@]}"
    -fsdev "local,id=root,path=/,security_model=$SECMODEL,readonly=on,multidevs=remap"
    -device virtio-9p-pci,fsdev=root,mount_tag=v2vm_root
    -fsdev "local,id=work,path=$WORKDIR,security_model=$SECMODEL,multidevs=remap"
    -device virtio-9p-pci,fsdev=work,mount_tag=v2vm_work
    -fsdev "local,id=ctl,path=$TMP/ctl,security_model=$SECMODEL"
    -device virtio-9p-pci,fsdev=ctl,mount_tag=v2vm_ctl
    -device virtio-serial-pci
    -chardev "file,id=out,path=$TMP/out" -device virtserialport,chardev=out,name=v2vm.stdout
    -chardev "file,id=err,path=$TMP/err" -device virtserialport,chardev=err,name=v2vm.stderr)
if [[ $DISK != 0 ]]; then
    truncate -s "$DISK" "$TMP/disk.img"
    QEMU+=(-drive "if=none,id=scratch,file=$TMP/disk.img,format=raw,cache=unsafe"
           -device virtio-blk-pci,drive=scratch,serial=v2vm-scratch)
fi
if [[ $NET == 1 ]]; then
    QEMU+=(-netdev user,id=net0 -device virtio-net-pci,netdev=net0)
fi

if [[ $DEBUG == 1 ]]; then
    "${QEMU[@]}" </dev/null &
else
    "${QEMU[@]}" </dev/null 2>"$TMP/qemu.log" &
fi
QPID=$!
TIMEDOUT=0
if [[ $TIMEOUT != 0 ]]; then
    sleep "$TIMEOUT" &
    SLEEPER=$!
    wait -n "$QPID" "$SLEEPER" || true
    if kill -0 "$QPID" 2>/dev/null; then TIMEDOUT=1; kill "$QPID"; fi
    kill "$SLEEPER" 2>/dev/null || true
fi
wait "$QPID" || true
QPID=
# If qemu died before opening the FIFOs, the cats still wait for a writer.
for f in "$TMP/out" "$TMP/err"; do : 1<>"$f"; done
wait $CATS || true
CATS=

if [[ $TIMEDOUT == 1 ]]; then
    echo "run-in-v2vm: timed out after ${TIMEOUT}s" >&2
    exit 124
fi
if [[ ! -s $TMP/ctl/rc ]]; then
    echo "run-in-v2vm: the VM did not report an exit status; qemu log:" >&2
    cat "$TMP/qemu.log" >&2 2>/dev/null || true
    if [[ -e $TMP/console.log ]]; then
        echo "--- guest console (last 50 lines):" >&2
        tail -n 50 "$TMP/console.log" >&2
    fi
    exit 125
fi
exit "$(cat "$TMP/ctl/rc")"
