# SPDX-License-Identifier: MIT
# bash completion for mmapctl(1): commands, options, and region names asked of the daemon
# (`mmapctl --json list`, through the socket named by --socket or $MMAPD_SOCKET).
# Installed by `make install` as $(BASHCOMPDIR)/mmapctl, where bash-completion loads it on
# first use; to try it from the tree: source completions/mmapctl.bash

# The region names of the daemon, one a line ($@: the --socket option to pass, if any).
_mmapctl_regions()
{
	"${COMP_WORDS[0]}" "$@" --json list 2>/dev/null | grep -o '"name":"[^"]*"' | cut -d'"' -f4
}

_mmapctl()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local commands="status list regions stat clients stats create delete rename copy resize locks watch
		flush policy clear-error chown chmod help"
	local options="--socket --json --output --help --version --anonymous --sparse --prometheus
		--replace --external --offset --length"
	local cmd="" nargs=0 i
	local -a socket=()

	case $prev in
	-s|--socket|-o|--output)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--offset|--length)
		return
		;;
	esac
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-s|--socket)
			socket=(--socket "${COMP_WORDS[i+1]}")
			((i++))
			;;
		-o|--output|--offset|--length)
			((i++))
			;;
		-*)
			;;
		*)
			if [[ -z $cmd ]]; then cmd=${COMP_WORDS[i]}; else ((nargs++)); fi
			;;
		esac
	done
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$options" -- "$cur"))
		return
	fi
	if [[ -z $cmd ]]; then
		COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		return
	fi
	case $cmd in
	stat|delete|rename|copy|resize|watch|flush|policy|clear-error|chown|chmod|locks)
		if ((nargs == 0)); then
			COMPREPLY=($(compgen -W "$(_mmapctl_regions "${socket[@]}")" -- "$cur"))
		elif [[ $cmd == policy ]] && ((nargs == 1)); then
			COMPREPLY=($(compgen -W "manual always every-bytes every-writes interval" -- "$cur"))
		elif [[ $cmd == chown ]] && ((nargs == 1)); then
			COMPREPLY=($(compgen -u -- "$cur"))
		fi
		;;
	help)
		((nargs == 0)) && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		;;
	esac
}

complete -F _mmapctl mmapctl
