# >>> gitconvoy >>> managed by 'git convoy hooks install'; 'git convoy hooks uninstall' removes this block
# Wakes gitconvoy's feeder when a ref it watches moved. git runs this hook three times per
# ref update (dozens of times in a rebase), so everything that can be decided without a fork
# is decided first; it never fails a transaction and keeps the exit status seen so far.
convoy_rc=$?
convoy_keep() { return "$1"; }
if [ "$1" = committed ] && [ "${CONVOY_IN_HOOK:-}" != 1 ] && [ ! -d .git/rebase-merge ]; then
  # Inside a pull, post-merge or post-rewrite follows for the branch; but when the pull brings
  # only state (or other fetched) changes, git says "Already up to date" and runs neither.
  # So in a pull only the fetch's moves of remote-tracking refs are looked at here.
  convoy_pull=
  case "${GIT_REFLOG_ACTION:-}" in pull*) convoy_pull=1 ;; esac
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
    [ -d "$convoy_git/rebase-merge" ] && exit 0  # post-rewrite follows
    [ -f "$convoy_git/rebase-apply/rebasing" ] && exit 0
    convoy_hit=
    if [ -f "$convoy_dir/feed-due" ]; then convoy_hit=1; fi
    set -f
    while read -r convoy_old convoy_new convoy_ref; do
      [ -n "$convoy_hit" ] && continue
      if [ -n "$convoy_pull" ]; then
        case $convoy_ref in refs/remotes/*) ;; *) continue ;; esac
      fi
      while read -r convoy_pat; do
        case $convoy_ref in $convoy_pat) convoy_hit=1; break ;; esac
      done < "$convoy_dir/watch"
    done
    [ -n "$convoy_hit" ] || exit 0
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
