#!/bin/bash
# demo.sh: run heald against local moto (IAM auth on) and an IMDSv2 stand-in, and print
# every event a subscriber receives, until Ctrl-C. Used by `make demo`.
set -euo pipefail

cd "$(dirname "$0")/../.."
HERE=tests/integration
CONFIG=config/demo.ini
DEMO_DIR=/tmp/heald-demo
HEALD=${HEALD_BIN:-build/heald}
MOTO_PORT=5010
IMDS_PORT=5011
PIDS=()

cleanup() {
        trap - EXIT INT TERM
        # Newest first: heald publishes Agent Stopping while moto and the subscriber still run.
        local i t
        for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
                # After Ctrl-C heald got SIGINT from the terminal too: a second signal would cut
                # its shutdown short, so give it time to stop on its own first.
                for ((t = 0; GOT_INT && i == ${#PIDS[@]} - 1 && t < 100; t++)); do
                        kill -0 "${PIDS[i]}" 2>/dev/null || break
                        sleep 0.1
                done
                kill -TERM "${PIDS[i]}" 2>/dev/null || true
                wait "${PIDS[i]}" 2>/dev/null || true
                ((i == ${#PIDS[@]} - 1)) && sleep 2 # let the subscriber print the last events
        done
        echo "demo: stopped; logs in $DEMO_DIR"
}
GOT_INT=0
trap cleanup EXIT
trap 'GOT_INT=1; exit 130' INT
trap 'exit 143' TERM

[[ -x $HEALD ]] || { echo "demo: $HEALD is missing (make build/heald)" >&2; exit 1; }
for port in $MOTO_PORT $IMDS_PORT; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                echo "demo: port $port is in use (another demo running?)" >&2
                exit 1
        fi
done

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
        local deadline=$((SECONDS + $1)) what=$2
        shift 2
        until "$@" 2>/dev/null; do
                if ((SECONDS >= deadline)); then
                        echo "demo: $what did not come up; see $DEMO_DIR" >&2
                        exit 1
                fi
                sleep 0.2
        done
}

# The stand-ins run in their own sessions so Ctrl-C reaches only heald and this script:
# heald then stops (publishing Agent Stopping) while AWS and the subscriber are still up.
setsid env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN INITIAL_NO_AUTH_ACTION_COUNT=3 \
        python3 $HERE/moto_aws.py -H 127.0.0.1 -p $MOTO_PORT >"$DEMO_DIR/moto.log" 2>&1 &
PIDS+=($!)
wait_for 30 "moto" python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$MOTO_PORT/moto-api/data.json', timeout=1)"
echo "demo: moto (IAM auth on) at http://127.0.0.1:$MOTO_PORT"

setsid python3 $HERE/imds_server.py --port $IMDS_PORT --moto-endpoint http://127.0.0.1:$MOTO_PORT \
        --source heald --tap-file "$DEMO_DIR/tap.json" >"$DEMO_DIR/imds.log" 2>&1 &
PIDS+=($!)
wait_for 30 "the IMDS server" test -s "$DEMO_DIR/tap.json"
wait_for 10 "the IMDS server" bash -c "exec 3<>/dev/tcp/127.0.0.1/$IMDS_PORT"
echo "demo: IMDSv2 at http://127.0.0.1:$IMDS_PORT (role heald-instance, policy packaging/iam-policy.json)"

python3 $HERE/awsbed.py command-queue "$DEMO_DIR/tap.json"

setsid python3 $HERE/tap_print.py "$DEMO_DIR/tap.json" &
PIDS+=($!)

echo "demo: starting heald with $CONFIG (its log follows; Ctrl-C stops everything)"
echo "demo: try: $HEALD send-event --config $CONFIG 'Demo Event' '{\"hello\":\"world\"}'"
echo "demo: try: python3 $HERE/awsbed.py send-command $DEMO_DIR/tap.json ping"
env -i PATH="$PATH" HEALD_LOG_TARGET=stderr "$HEALD" --config "$CONFIG" &
PIDS+=($!)

# The fleet's side of a command round trip: once heald is up, a ping and a run-checks go to
# its queue; the subscriber prints Command Received and Command Succeeded for each.
(
        sleep 3
        python3 $HERE/awsbed.py send-command "$DEMO_DIR/tap.json" ping
        python3 $HERE/awsbed.py send-command "$DEMO_DIR/tap.json" run-checks
) &
wait "${PIDS[-1]}"
