#!/usr/bin/env bash
# A throw-away single-node SLURM cluster on this machine, from Debian's packages, for testing the
# workflow's SLURM profile (tests/test_slurm.py). Everything lives in one directory: configuration,
# munge key and socket, state, logs and (with accounting) a private MariaDB. One file outside it:
# /etc/slurm/slurm.conf, a link to the configuration while the cluster is up, because Snakemake's job
# step drops $SLURM_CONF before it calls srun inside a job, so srun only finds the default path.
#
#   scripts/slurm_cluster.sh install                   apt-get the packages (root, Debian)
#   scripts/slurm_cluster.sh up [--no-accounting]      start munged, [mariadbd, slurmdbd,] slurmctld, slurmd
#   scripts/slurm_cluster.sh down                      cancel jobs, stop every daemon, delete the directory
#   scripts/slurm_cluster.sh status                    which daemons run, and the node's state
#
# The directory is $MEBQAT_SLURM_DIR (default /tmp/mebqat-slurm). After `up`, `source DIR/env.sh` points
# sbatch, squeue, sacct, ... (and Snakemake's SLURM plugin, which calls them) at this cluster.
# Accounting (slurmdbd + MariaDB, the default) gives `sacct`, which the plugin polls by default; with
# --no-accounting, `sacct` reports "Slurm accounting storage is disabled" and the plugin must be told
# `slurm-status-command: squeue`; the controller still writes each finished job to DIR/log/jobcomp.txt.
# Daemons run as root with proctrack/linuxproc and task/none (no systemd, no cgroups needed).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # the daemons live in sbin, which a non-login root shell may lack

DIR="${MEBQAT_SLURM_DIR:-/tmp/mebqat-slurm}"
CLUSTER=mebqat-test
PARTITION=debug
ACCOUNT=mebqat
SYSTEM_CONF=/etc/slurm/slurm.conf
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)

die() { echo "slurm_cluster.sh: $*" >&2; exit 1; }
say() { echo "[slurm_cluster] $*"; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (the daemons run as root here); try: sudo $0 $*"; }

need_bins() {
    local missing=()
    for bin in "$@"; do command -v "$bin" >/dev/null || missing+=("$bin"); done
    [ ${#missing[@]} = 0 ] || die "missing ${missing[*]}; install Debian's packages with: $0 install"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_for SECONDS WHAT COMMAND...: run COMMAND every half second until it succeeds
wait_for() {
    local deadline=$(( SECONDS + $1 )) what=$2; shift 2
    until timeout 10 "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            tail -n 20 "$DIR"/log/*.log >&2 2>/dev/null || true
            die "$what did not come up within the time allowed (logs in $DIR/log)"
        fi
        sleep 0.5
    done
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

cmd_install() {
    need_root install
    local missing=()
    for bin in munged slurmctld slurmd sbatch slurmdbd mariadbd; do command -v "$bin" >/dev/null || missing+=("$bin"); done
    if [ ${#missing[@]} = 0 ]; then say "Debian's SLURM packages are installed"; return 0; fi
    command -v apt-get >/dev/null || die "apt-get not found: this installer needs Debian's packages (${PACKAGES[*]})"
    local started=$SECONDS
    apt-get update -q >/dev/null
    # policy-rc.d or no init system: the packages' own services may not start, which is fine, `up` starts its own
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >/dev/null
    say "installed ${PACKAGES[*]} in $(( SECONDS - started ))s"
}

start_munge() {
    mkdir -p "$DIR/munge" && chmod 700 "$DIR/munge"
    mungekey --create --keyfile="$DIR/munge/munge.key" 2>/dev/null \
        || dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$DIR/munge/munge.key"
    munged --force --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
    wait_for 10 munged sh -c "munge -n -S '$DIR/munge/munge.socket' | unmunge -S '$DIR/munge/munge.socket'"
}

start_mariadb() {
    mariadb-install-db --no-defaults --user=root --datadir="$DIR/mysql" --auth-root-authentication-method=normal \
        --skip-test-db > "$DIR/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed (see $DIR/log/mariadb-install.log)"
    mariadbd --no-defaults --user=root --datadir="$DIR/mysql" --socket="$DIR/run/mysql.sock" \
        --bind-address=127.0.0.1 --port="$DB_PORT" --pid-file="$DIR/run/mariadbd.pid" \
        --log-error="$DIR/log/mariadbd.log" --skip-log-bin --innodb-buffer-pool-size=64M \
        </dev/null >/dev/null 2>&1 &  # no inherited pipes: a caller reading our output must not wait for it
    wait_for 60 mariadbd mariadb --no-defaults -S "$DIR/run/mysql.sock" -u root -e "select 1"
    mariadb --no-defaults -S "$DIR/run/mysql.sock" -u root <<SQL
CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL
}

write_slurmdbd_conf() {
    cat > "$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$DIR/etc/slurmdbd.conf"  # slurmdbd refuses a readable file (it holds the password)
}

write_slurm_conf() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    # advertise 90% of the memory: a node that reports less than its RealMemory is drained
    mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
    cat > "$DIR/etc/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=5
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
MinJobAge=300
EOF
    if [ "$ACCOUNTING" = yes ]; then
        cat >> "$DIR/etc/slurm.conf" <<EOF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$DIR/munge/munge.socket
AccountingStorageEnforce=associations
AccountingStoreFlags=job_comment
EOF
    else
        echo "AccountingStorageType=accounting_storage/none" >> "$DIR/etc/slurm.conf"
    fi
    cat >> "$DIR/etc/slurm.conf" <<EOF
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

cmd_up() {
    need_root up
    ACCOUNTING=yes
    case "${1:-}" in
        "") ;;
        --no-accounting) ACCOUNTING=no ;;
        *) die "unknown option '$1' for up (expected nothing or --no-accounting)" ;;
    esac
    need_bins munged munge unmunge slurmctld slurmd sbatch sinfo python3
    [ $ACCOUNTING = no ] || need_bins slurmdbd sacctmgr mariadbd mariadb-install-db mariadb
    if alive "$DIR/run/slurmctld.pid" || alive "$DIR/run/munged.pid"; then
        die "a cluster already runs in $DIR; stop it first with: $0 down"
    fi
    if [ -e "$SYSTEM_CONF" ] && ! [ -L "$SYSTEM_CONF" ]; then
        die "$SYSTEM_CONF exists and is not a link left by this script: this machine has its own SLURM, use that"
    fi
    rm -rf "$DIR"
    mkdir -p "$DIR"/{etc,run,log,state,spool}
    chmod 700 "$DIR"
    export SLURM_CONF="$DIR/etc/slurm.conf"
    CTLD_PORT=$(free_port); SLURMD_PORT=$(free_port); DBD_PORT=$(free_port); DB_PORT=$(free_port)
    DB_PASS=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
    local started=$SECONDS
    start_munge
    write_slurm_conf
    if [ $ACCOUNTING = yes ]; then
        start_mariadb
        write_slurmdbd_conf
        slurmdbd
        wait_for 60 slurmdbd sacctmgr -n list cluster
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
        sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description="mebqat tests" >/dev/null
        sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null
    fi
    mkdir -p "$(dirname "$SYSTEM_CONF")" && ln -sfn "$DIR/etc/slurm.conf" "$SYSTEM_CONF"
    slurmctld
    wait_for 30 slurmctld scontrol ping
    slurmd
    wait_for 60 "the node" sh -c "sinfo -h -N -o %T | grep -qx idle"
    cat > "$DIR/env.sh" <<EOF
export SLURM_CONF=$SLURM_CONF
EOF
    say "up in $(( SECONDS - started ))s: cluster $CLUSTER, partition $PARTITION, $(nproc) CPUs, accounting: $ACCOUNTING"
    say "use it with: source $DIR/env.sh"
}

cmd_down() {
    [ -d "$DIR" ] || { say "nothing to stop ($DIR does not exist)"; return 0; }
    export SLURM_CONF="$DIR/etc/slurm.conf"
    if alive "$DIR/run/slurmctld.pid"; then  # jobs first: their steps outlive slurmd under proctrack/linuxproc
        scancel --user=root 2>/dev/null || true
        for _ in $(seq 60); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.5; done
    fi
    for daemon in slurmd slurmctld slurmdbd mariadbd munged; do
        local pidfile="$DIR/run/$daemon.pid"
        alive "$pidfile" || continue
        local pid; pid=$(cat "$pidfile")
        kill -TERM "$pid"
        for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
    done
    if [ "$(readlink "$SYSTEM_CONF" 2>/dev/null)" = "$DIR/etc/slurm.conf" ]; then rm -f "$SYSTEM_CONF"; fi
    rm -rf "$DIR"
    say "stopped; $DIR removed"
}

cmd_status() {
    export SLURM_CONF="$DIR/etc/slurm.conf"
    for daemon in munged mariadbd slurmdbd slurmctld slurmd; do
        if alive "$DIR/run/$daemon.pid"; then echo "$daemon: running (pid $(cat "$DIR/run/$daemon.pid"))"; else echo "$daemon: not running"; fi
    done
    alive "$DIR/run/slurmctld.pid" && sinfo -N -l || true
}

case "${1:-}" in
    install) cmd_install ;;
    up) shift; cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) die "usage: $0 install | up [--no-accounting] | down | status   (directory: \$MEBQAT_SLURM_DIR, default /tmp/mebqat-slurm)" ;;
esac
