# >>> gitconvoy >>> managed by 'git convoy hooks install --server'; 'git convoy hooks uninstall' removes this block
# On a bare remote: a push that moved the state branch (a `done` queues an MR there) or a
# work branch starts one refinery run in the background, so the remote lands what its
# clients queue. The push itself never waits for it; the run's output goes to
# convoy/refinery.log in this repository. One run at a time; a push during a run leaves a
# marker that makes the run go round once more.
convoy_rc=$?
convoy_keep() { return "$1"; }
# CONVOY_IN_HOOK is not looked at: a client's own guard reaches this hook through a push to a
# remote on the same machine (receive-pack inherits the pusher's environment). The serve run
# sets CONVOY_IN_SERVE so a push it makes itself does not start another.
if [ "${CONVOY_IN_SERVE:-}" != 1 ]; then
  (
    convoy_git=${GIT_DIR:-.}
    convoy_dir=$convoy_git/convoy
    convoy_hit=
    set -f
    while read -r convoy_old convoy_new convoy_ref; do
      case $convoy_ref in @STATE_REF@|refs/heads/convoy/*) convoy_hit=1 ;; esac
    done
    [ -n "$convoy_hit" ] || exit 0
    mkdir -p "$convoy_dir" || exit 0
    : > "$convoy_dir/refinery-due"
    convoy_python=@PYTHON@
    if [ -x "$convoy_python" ]; then convoy_run="$convoy_python -P -m gitconvoy"; else convoy_run="git convoy"; fi
    # detached: its own session, no terminal, nothing inherited from the push's pipes
    GIT_DIR=$(cd "$convoy_git" && pwd) CONVOY_IN_HOOK=1 CONVOY_IN_SERVE=1 setsid $convoy_run refinery serve \
      < /dev/null >> "$convoy_dir/refinery.log" 2>&1 &
    echo "gitconvoy: landing queued work on the remote (log: convoy/refinery.log)" >&2
    exit 0
  ) || :
fi
convoy_keep "$convoy_rc"
# <<< gitconvoy <<<
