# >>> gitconvoy >>> managed by 'git convoy hooks install'; 'git convoy hooks uninstall' removes this block
# Adds 'Convoy-Bead: <id>' to a commit made on a bead's work branch, so a cherry-pick, a
# `git am` of its patches or a forge's squash merge still names the bead. Only on a branch
# listed in .git/convoy/work-branches (written by the feeder), never while rebasing, picking
# or applying someone's commits, never twice; it never fails the commit.
convoy_rc=$?
convoy_keep() { return "$1"; }
if [ "${CONVOY_IN_HOOK:-}" != 1 ] && [ -n "${1:-}" ] && [ "${2:-}" != merge ]; then
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
    [ -f "$convoy_dir/work-branches" ] || exit 0
    [ -d "$convoy_git/rebase-merge" ] && exit 0
    [ -d "$convoy_git/rebase-apply" ] && exit 0
    [ -f "$convoy_git/CHERRY_PICK_HEAD" ] && exit 0
    case "${GIT_REFLOG_ACTION:-}" in rebase*|cherry-pick*|am*|revert*) exit 0 ;; esac
    convoy_branch=$(git symbolic-ref -q HEAD 2>/dev/null) || exit 0
    convoy_bead=
    while read -r convoy_ref convoy_id; do
      if [ "$convoy_ref" = "$convoy_branch" ]; then convoy_bead=$convoy_id; break; fi
    done < "$convoy_dir/work-branches"
    [ -n "$convoy_bead" ] || exit 0
    case $convoy_bead in *[!A-Za-z0-9._-]*) exit 0 ;; esac  # only ids go into a message
    git interpret-trailers --in-place --if-exists addIfDifferent \
      --trailer "Convoy-Bead: $convoy_bead" "$1" 2>/dev/null
    exit 0
  ) || :
fi
convoy_keep "$convoy_rc"
# <<< gitconvoy <<<
