# >>> gitconvoy >>> managed by 'git convoy hooks install'; 'git convoy hooks uninstall' removes this block
# Wakes gitconvoy's feeder when a ref it watches moved since its last run: one
# `git for-each-ref` decides, so a hook where nothing relevant happened costs a few ms.
# Never changes the outcome of the git command (keeps the exit status seen so far).
convoy_rc=$?
convoy_keep() { return "$1"; }
convoy_go=1
[ "${CONVOY_IN_HOOK:-}" = 1 ] && convoy_go=
case @HOOK@ in
  post-checkout|post-commit)  # inside a pull or a rebase: post-merge/post-rewrite follow
    case "${GIT_REFLOG_ACTION:-}" in pull*) convoy_go= ;; esac
    [ -d .git/rebase-merge ] && convoy_go= ;;
esac
if [ -n "$convoy_go" ]; then
  (
    if [ -n "${GIT_DIR:-}" ]; then convoy_git=$GIT_DIR
    elif [ -d .git ]; then convoy_git=.git
    else convoy_git=$(git rev-parse --git-dir 2>/dev/null) || exit 0
    fi
    convoy_dir=$convoy_git/convoy
    if [ -f "$convoy_git/commondir" ]; then
      read -r convoy_c < "$convoy_git/commondir"
      case $convoy_c in /*) convoy_dir=$convoy_c/convoy ;; *) convoy_dir=$convoy_git/$convoy_c/convoy ;; esac
    fi
    [ -f "$convoy_dir/watch" ] || exit 0
    case @HOOK@ in
      post-checkout|post-commit)
        [ -d "$convoy_git/rebase-merge" ] && exit 0
        [ -f "$convoy_git/rebase-apply/rebasing" ] && exit 0 ;;
    esac
    if [ ! -f "$convoy_dir/feed-due" ]; then
      set -f
      convoy_pats=
      while read -r convoy_pat; do convoy_pats="$convoy_pats $convoy_pat"; done < "$convoy_dir/watch"
      convoy_now=$(git for-each-ref --format='%(objectname) %(refname)' $convoy_pats 2>/dev/null)
      convoy_seen=
      if [ -f "$convoy_dir/hook-seen" ]; then convoy_seen=$(cat "$convoy_dir/hook-seen"); fi
      [ "$convoy_now" = "$convoy_seen" ] && exit 0
    fi
    # the interpreter recorded at install; -P keeps the repository's own files off sys.path
    if [ -x @PYTHON@ ]; then
      CONVOY_DIR=$convoy_dir @PYTHON@ -P -m gitconvoy hook @HOOK@ "$@" < /dev/null
    else
      CONVOY_DIR=$convoy_dir git convoy hook @HOOK@ "$@" < /dev/null
    fi
    convoy_status=$?
    if [ "$convoy_status" -ne 0 ]; then
      echo "warning: gitconvoy: the @HOOK@ hook failed (exit $convoy_status); see 'git convoy doctor'" >&2
      echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) @HOOK@ exit $convoy_status" >> "$convoy_dir/hook-errors.log" 2>/dev/null
    fi
    exit 0
  ) || :
fi
convoy_keep "$convoy_rc"
# <<< gitconvoy <<<
