# pair.sh: helpers for the cases that run on two VMs (a `# vm-pair` header; see README.md).
# run.sh copies this file into both VMs as /vmtest/pair.sh; a case sources it:
#
#   . /vmtest/pair.sh
#   vm_barrier lab-up             # returns once the other VM has reached `vm_barrier lab-up`
#   sum=$(vm_exchange sum "$mine")   # the same, and prints the value the other VM passed
#
# The environment run.sh gives each VM of a pair:
#   VMTEST_ROLE   a or b
#   VMTEST_ADDR   this VM's underlay address: a 198.51.100.1, b 198.51.100.2 (on eth0, /24)
#   VMTEST_PEER   the other VM's underlay address
#
# A barrier is one TCP connection over the underlay (busybox nc, port $VMTEST_BARRIER_PORT,
# default 7000, in the VM's root namespace): VM a listens, VM b connects (retrying until a
# listens), each sends "NAME VALUE" and reads the other's. Both VMs must pass the barriers in
# the same order: a different NAME on the other side is an error (status 1), and so is no
# peer within $VMTEST_BARRIER_TIMEOUT seconds (default 600). Works in bash and in sh.

: "${VMTEST_BARRIER_PORT:=7000}"
: "${VMTEST_BARRIER_TIMEOUT:=600}"

# vm_exchange NAME [VALUE]: wait for the other VM at barrier NAME; print its VALUE.
vm_exchange() {
    _vm_name=$1 _vm_value=${2:-}
    case $_vm_name$_vm_value in *[[:space:]]*)
        echo "vm_exchange: NAME and VALUE are single words: '$_vm_name' '$_vm_value'" >&2
        return 2 ;;
    esac
    _vm_start=$(date +%s)
    _vm_got=
    echo "vm_barrier $_vm_name: waiting for the other VM" >&2
    # From a file, not a pipe: busybox nc exits when the other side closes, and would then
    # never send what a pipe's writer had not written yet.
    _vm_msg=/tmp/.vm_barrier.$$
    echo "$_vm_name $_vm_value" >"$_vm_msg"
    if [ "${VMTEST_ROLE:-}" = a ]; then
        _vm_got=$(timeout "$VMTEST_BARRIER_TIMEOUT" nc -l -p "$VMTEST_BARRIER_PORT" <"$_vm_msg" 2>/dev/null) || true
    elif [ "${VMTEST_ROLE:-}" = b ]; then
        while :; do
            # Refused until a listens; a connection that a closes unread gives nothing.
            _vm_got=$(nc "$VMTEST_PEER" "$VMTEST_BARRIER_PORT" <"$_vm_msg" 2>/dev/null) || true
            [ -z "$_vm_got" ] || break
            [ $(($(date +%s) - _vm_start)) -lt "$VMTEST_BARRIER_TIMEOUT" ] || break
            sleep 0.3
        done
    else
        echo "vm_exchange: VMTEST_ROLE is '${VMTEST_ROLE:-}', not a or b (run the case with run.sh)" >&2
        return 2
    fi
    _vm_waited=$(($(date +%s) - _vm_start))
    if [ -z "$_vm_got" ]; then
        echo "vm_barrier $_vm_name: the other VM did not come within ${VMTEST_BARRIER_TIMEOUT}s" >&2
        return 1
    fi
    if [ "${_vm_got%% *}" != "$_vm_name" ]; then
        echo "vm_barrier $_vm_name: the other VM is at barrier '${_vm_got%% *}'" >&2
        return 1
    fi
    echo "vm_barrier $_vm_name: passed after ${_vm_waited}s" >&2
    printf '%s\n' "${_vm_got#* }"
}

# vm_barrier NAME: wait until the other VM has reached vm_barrier NAME too.
vm_barrier() {
    vm_exchange "$1" >/dev/null
}
