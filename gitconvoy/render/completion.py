"""Completion scripts for bash, zsh and fish, from a table of the commands (pure text).

The table (sub-commands, options, what each option's value and each argument is) is written
into the script when it is generated, so a TAB on a sub-command or an option starts no
process at all; only names from the state (beads, epics, convoys, rigs) come from
`git convoy __complete ids KIND…`, which answers from a small cache (gitconvoy.git.completion).

Value kinds: `words:a b` and `choice:a b` (fixed words), `ids:bead,convoy` (names from the
state), `branch`, `remote`, `file`, and `` (nothing to offer). A table key is the command
path (`bead show`), `@` for `git convoy` itself; option keys are `PATH|--option`.

Hooks: bash's git completion calls `_git_convoy` for `git convoy …` (and loads the file
`git-convoy` from the completions folder to find it); zsh's `_git` calls `_git-convoy` from an
autoloaded `#compdef git-convoy` file; fish's git completion hands `git convoy …` to the
completions of `git-convoy` (and older fish gets a `complete -c git` line of its own).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

ROOT = "@"


@dataclass
class Node:
    path: str  # "bead show"; ROOT for git convoy itself
    subcommands: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)  # option -> kind of its value
    args: list[str] = field(default_factory=list)  # kind of each positional argument
    variadic: bool = False  # the last argument repeats


def _args(node: Node) -> str:
    """`kind|kind`, the last with `*` when it repeats."""
    kinds = list(node.args)
    if kinds and node.variadic:
        kinds[-1] += "*"
    return "|".join(kinds)


def _sh(text: str) -> str:
    """A single-quoted word for bash, zsh and fish alike (table text has no quote)."""
    if "'" in text or "\\" in text:
        raise ValueError(f"completion table text may not hold quotes: {text!r}")
    return f"'{text}'"


def _tables(nodes: list[Node], row: Callable[[str, str], str]) -> dict[str, list[str]]:
    tables: dict[str, list[str]] = {"subs": [], "opts": [], "vals": [], "args": []}
    for node in nodes:
        if node.subcommands:
            tables["subs"].append(row(node.path, " ".join(node.subcommands)))
        if node.options:
            tables["opts"].append(row(node.path, " ".join(node.options)))
        for option, kind in node.values.items():
            tables["vals"].append(row(f"{node.path}|{option}", kind))
        if node.args:
            tables["args"].append(row(node.path, _args(node)))
    return tables


BASH = r"""# bash completion for git convoy (gitconvoy {version}).
# Made by `git convoy completion bash`; install it with
#   git convoy completion bash > ~/.local/share/bash-completion/completions/git-convoy
# git's own completion then calls _git_convoy for `git convoy <TAB>`; `git-convoy <TAB>` works
# too. Regenerate it after upgrading gitconvoy.

declare -gA __git_convoy_subs=(
{subs}
)
declare -gA __git_convoy_opts=(
{opts}
)
declare -gA __git_convoy_vals=(
{vals}
)
declare -gA __git_convoy_args=(
{args}
)

__git_convoy_git () {{
	if declare -F __git >/dev/null; then __git "$@"; else git "$@"; fi
}}

# __git_convoy_reply KIND CUR [PREFIX]: fill COMPREPLY with the words of KIND matching CUR.
__git_convoy_reply () {{
	local kind=$1 cur=$2 pfx=${{3-}} list=""
	case $kind in
	words:*|choice:*) list=${{kind#*:}}; list=${{list// /$'\n'}} ;;
	ids:*) list=$(__git_convoy_git convoy __complete ids ${{kind#ids:}} \
		--prefix="$cur" 2>/dev/null) ;;
	branch) list=$(__git_convoy_git for-each-ref --format='%(refname:short)' \
		refs/heads 2>/dev/null) ;;
	remote) list=$(__git_convoy_git remote 2>/dev/null) ;;
	file) COMPREPLY=(); return ;;  # an empty reply: bash completes file names
	*) COMPREPLY=(); return ;;
	esac
	if [ -n "${{__git_convoy_in_git-}}" ] && declare -F __gitcomp_nl >/dev/null; then
		__gitcomp_nl "$list" "$pfx" "$cur"
	else
		local IFS=$'\n'
		COMPREPLY=($(compgen -P "$pfx" -W "$list" -- "$cur"))
	fi
}}

# __git_convoy_complete FIRST: complete words[cword]; FIRST is the index of the word after
# `convoy` (or after `git-convoy`).
__git_convoy_complete () {{
	local i=$1 cmdpath=@ w n=0 kind prev
	while [ "$i" -lt "$cword" ]; do
		w=${{words[i]}}
		if [[ $w == -* ]]; then
			if [[ $w != *=* && -n ${{__git_convoy_vals["$cmdpath|$w"]+x}} ]]; then
				i=$((i + 1))
			fi
		elif [[ " ${{__git_convoy_subs[$cmdpath]-}} " == *" $w "* ]]; then
			if [ "$cmdpath" = @ ]; then cmdpath=$w; else cmdpath="$cmdpath $w"; fi
			n=0
		else
			n=$((n + 1))
		fi
		i=$((i + 1))
	done
	if [ "$cword" -gt "$1" ]; then
		prev=${{words[cword - 1]}}
		if [[ $prev == -* && $prev != *=* && -n ${{__git_convoy_vals["$cmdpath|$prev"]+x}} ]]; then
			__git_convoy_reply "${{__git_convoy_vals["$cmdpath|$prev"]}}" "$cur"
			return
		fi
	fi
	if [[ $cur == --*=* ]]; then
		kind=${{__git_convoy_vals["$cmdpath|${{cur%%=*}}"]-}}
		__git_convoy_reply "$kind" "${{cur#*=}}" "${{cur%%=*}}="
		return
	fi
	if [[ $cur == -* ]]; then
		__git_convoy_reply "words:${{__git_convoy_opts[$cmdpath]-}}" "$cur"
		return
	fi
	if [ -n "${{__git_convoy_subs[$cmdpath]-}}" ]; then
		__git_convoy_reply "words:${{__git_convoy_subs[$cmdpath]}}" "$cur"
		return
	fi
	local -a kinds
	IFS='|' read -r -a kinds <<< "${{__git_convoy_args[$cmdpath]-}}"
	if [ "$n" -lt "${{#kinds[@]}}" ]; then
		kind=${{kinds[n]}}
	elif [ "${{#kinds[@]}}" -gt 0 ] && [[ ${{kinds[-1]}} == *'*' ]]; then
		kind=${{kinds[-1]}}
	else
		kind=""
	fi
	__git_convoy_reply "${{kind%'*'}}" "$cur"
}}

# Called by git's completion (git-completion.bash) for `git convoy …`.
_git_convoy () {{
	local i first=1 __git_convoy_in_git=1
	for ((i = 1; i < cword; i++)); do
		if [ "${{words[i]}}" = convoy ]; then first=$((i + 1)); break; fi
	done
	__git_convoy_complete "$first"
}}

_git_convoy_standalone () {{
	local cur words cword
	words=("${{COMP_WORDS[@]}}")
	cword=$COMP_CWORD
	cur=${{words[cword]}}
	__git_convoy_complete 1
}}
complete -o bashdefault -o default -F _git_convoy_standalone git-convoy
"""


def bash_script(nodes: list[Node], version: str) -> str:
    tables = _tables(nodes, lambda key, value: f"\t[{_sh(key)}]={_sh(value)}")
    return BASH.format(version=version, **{k: "\n".join(v) for k, v in tables.items()})


ZSH = r"""#compdef git-convoy
#description beads, deps and convoys stored on a git ref
# zsh completion for git convoy (gitconvoy {version}); made by `git convoy completion zsh`.
#   git convoy completion zsh > ~/.zfunc/_git-convoy
# with fpath=(~/.zfunc $fpath) in ~/.zshrc before compinit.
# zsh's git completion calls _git-convoy for `git convoy <TAB>`; `git-convoy <TAB>` works too.

typeset -gA _git_convoy_subs _git_convoy_opts _git_convoy_vals _git_convoy_args
_git_convoy_subs=(
{subs}
)
_git_convoy_opts=(
{opts}
)
_git_convoy_vals=(
{vals}
)
_git_convoy_args=(
{args}
)

# __git_convoy_reply KIND CUR: offer the words of KIND.
__git_convoy_reply () {{
  local kind=$1 cur=$2
  local -a list
  case $kind in
    (words:*|choice:*) list=( ${{(s: :)kind#*:}} ); compadd -a list ;;
    (ids:*)
      list=( ${{(f)"$(git convoy __complete ids ${{(s:,:)kind#ids:}} --prefix=$cur \
        --describe 2>/dev/null)"}} )
      list=( ${{list/$'\t'/:}} )
      _describe -t names 'name' list ;;
    (branch)
      list=( ${{(f)"$(git for-each-ref --format='%(refname:short)' refs/heads 2>/dev/null)"}} )
      compadd -a list ;;
    (remote) list=( ${{(f)"$(git remote 2>/dev/null)"}} ); compadd -a list ;;
    (file) _files ;;
  esac
}}

_git-convoy () {{
  # words[1] is `convoy` (from _git) or `git-convoy`; CURRENT is the word being completed.
  local -i i=2 n=0
  local cmdpath=@ w kind prev cur=${{words[CURRENT]}}
  local -a kinds
  while (( i < CURRENT )); do
    w=${{words[i]}}
    if [[ $w == -* ]]; then
      [[ $w != *=* && -n ${{_git_convoy_vals[$cmdpath|$w]}} ]] && (( i++ ))
    elif (( ${{${{(s: :)_git_convoy_subs[$cmdpath]}}[(Ie)$w]}} )); then
      if [[ $cmdpath == @ ]]; then cmdpath=$w; else cmdpath="$cmdpath $w"; fi
      n=0
    else
      (( n++ ))
    fi
    (( i++ ))
  done
  if (( CURRENT > 2 )); then
    prev=${{words[CURRENT-1]}}
    if [[ $prev == -* && $prev != *=* && -n ${{_git_convoy_vals[$cmdpath|$prev]}} ]]; then
      __git_convoy_reply "${{_git_convoy_vals[$cmdpath|$prev]}}" "$cur"
      return
    fi
  fi
  if [[ $cur == --*=* ]]; then
    compset -P '*='
    __git_convoy_reply "${{_git_convoy_vals[$cmdpath|${{cur%%=*}}]}}" "${{cur#*=}}"
    return
  fi
  if [[ $cur == -* ]]; then
    __git_convoy_reply "words:${{_git_convoy_opts[$cmdpath]}}" "$cur"
    return
  fi
  if [[ -n ${{_git_convoy_subs[$cmdpath]}} ]]; then
    __git_convoy_reply "words:${{_git_convoy_subs[$cmdpath]}}" "$cur"
    return
  fi
  kinds=( ${{(s:|:)_git_convoy_args[$cmdpath]}} )
  if (( n < ${{#kinds}} )); then
    kind=${{kinds[n+1]}}
  elif (( ${{#kinds}} )) && [[ ${{kinds[-1]}} == *'*' ]]; then
    kind=${{kinds[-1]}}
  else
    kind=''
  fi
  __git_convoy_reply "${{kind%'*'}}" "$cur"
}}

_git-convoy "$@"
"""


def zsh_script(nodes: list[Node], version: str) -> str:
    tables = _tables(nodes, lambda key, value: f"  {_sh(key)} {_sh(value)}")
    return ZSH.format(version=version, **{k: "\n".join(v) for k, v in tables.items()})


FISH = r"""# fish completion for git convoy (gitconvoy {version}).
# Made by `git convoy completion fish`; install it with
#   git convoy completion fish > ~/.config/fish/completions/git-convoy.fish
# fish's git completion hands `git convoy <TAB>` to the completions of git-convoy.

function __git_convoy_table -a table key
    switch "$table|$key"
{cases}
    end
end

# __git_convoy_reply KIND CUR: print the words of KIND (name<TAB>description for names).
function __git_convoy_reply -a kind cur
    switch $kind
        case 'words:*' 'choice:*'
            string split ' ' -- (string replace -r '^[a-z]+:' '' -- $kind)
        case 'ids:*'
            set -l kinds (string split ',' -- (string replace 'ids:' '' -- $kind))
            git convoy __complete ids $kinds --prefix=$cur --describe 2>/dev/null
        case branch
            git for-each-ref --format='%(refname:short)' refs/heads 2>/dev/null
        case remote
            git remote 2>/dev/null
        case file
            __fish_complete_path $cur
    end
end

function __git_convoy_words
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l i 2
    if test "$tokens[1]" = git
        set i (contains -i -- convoy $tokens); or return
        set i (math $i + 1)
    end
    set -l cmdpath @
    set -l n 0
    set -l count (count $tokens)
    while test $i -le $count
        set -l w $tokens[$i]
        if string match -q -- '-*' $w
            set -l takes (__git_convoy_table vals "$cmdpath|$w")
            if not string match -q -- '*=*' $w; and test -n "$takes"
                set i (math $i + 1)
            end
        else if contains -- $w (string split ' ' -- (__git_convoy_table subs $cmdpath))
            if test $cmdpath = @
                set cmdpath $w
            else
                set cmdpath "$cmdpath $w"
            end
            set n 0
        else
            set n (math $n + 1)
        end
        set i (math $i + 1)
    end
    set -l prev $tokens[-1]
    if string match -q -- '-*' $prev; and not string match -q -- '*=*' $prev
        set -l kind (__git_convoy_table vals "$cmdpath|$prev")
        if test -n "$kind"
            __git_convoy_reply $kind $cur
            return
        end
    end
    if string match -q -- '--*=*' $cur
        set -l opt (string replace -r '=.*' '' -- $cur)
        set -l value (string replace -r '^[^=]*=' '' -- $cur)
        for word in (__git_convoy_reply (__git_convoy_table vals "$cmdpath|$opt") $value)
            echo "$opt=$word"
        end
        return
    end
    if string match -q -- '-*' $cur
        __git_convoy_reply "words:"(__git_convoy_table opts $cmdpath) $cur
        return
    end
    set -l subs (__git_convoy_table subs $cmdpath)
    if test -n "$subs"
        __git_convoy_reply "words:$subs" $cur
        return
    end
    set -l kinds (string split '|' -- (__git_convoy_table args $cmdpath))
    set -l kind ''
    if test (count $kinds) -gt $n
        set kind $kinds[(math $n + 1)]
    else if test (count $kinds) -gt 0; and string match -q -- '*\*' $kinds[-1]
        set kind $kinds[-1]
    end
    __git_convoy_reply (string replace -r '\*$' '' -- $kind) $cur
end

complete -c git-convoy -f -a '(__git_convoy_words)'
# fish before 3.2 does not hand `git convoy` to git-convoy's completions
if not functions -q __fish_git_complete_custom_command
    complete -c git -f -n 'contains -- convoy (commandline -opc)' -a '(__git_convoy_words)'
end
"""


def fish_script(nodes: list[Node], version: str) -> str:
    cases = []
    for name, rows in _tables(nodes, lambda key, value: f"{key}\x00{value}").items():
        for row in rows:
            key, value = row.split("\x00")
            cases.append(f"        case {_sh(f'{name}|{key}')}\n            echo {_sh(value)}")
    return FISH.format(version=version, cases="\n".join(cases))


SCRIPTS = {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}
