#!/bin/bash
# The hand-written baseline: a linear chain of N nodes built with one `ip` process per step, as a
# user would script it. Each node its own netns, neighbours joined by veth, one /31 per link
# (o = 2*i; left end 10.(o>>16).(o>>8&255).(o&255)/31, right end +1), lo up, ip_forward on.
# usage: iproute2-chain.sh N    prints: peer=iproute2 n=N up_s=X down_s=Y ; exit 1 if a ping fails
# env:   PREFIX  namespace name prefix (default ipc; bench/run.sh uses bni)
set -u
n=$1 p=${PREFIX:-ipc}
addr() { local o=$1; echo "10.$((o>>16)).$(((o>>8)&255)).$((o&255))"; }
now() { date +%s.%N; }
s=$(now)
for ((i=0;i<n;i++)); do ip netns add $p$i; ip -n $p$i link set lo up; ip netns exec $p$i sysctl -qw net.ipv4.ip_forward=1; done
for ((i=0;i<n-1;i++)); do
  j=$((i+1))
  ip link add e1 netns $p$i type veth peer name e0 netns $p$j
  ip -n $p$i addr add "$(addr $((2*i)))/31" dev e1
  ip -n $p$j addr add "$(addr $((2*i+1)))/31" dev e0
  ip -n $p$i link set e1 up
  ip -n $p$j link set e0 up
done
u=$(now)
ok=1; ip netns exec ${p}0 ping -c1 -W2 "$(addr 1)" >/dev/null 2>&1 || ok=0
s2=$(now)
for ((i=0;i<n;i++)); do ip netns del $p$i; done
d=$(now)
echo "peer=iproute2 n=$n up_s=$(echo "$u - $s" | bc) down_s=$(echo "$d - $s2" | bc)"
[[ $ok == 1 ]]
