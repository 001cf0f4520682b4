# bash completion for dnsfo and dnsfo-run (installed as
# /usr/share/bash-completion/completions/dnsfo and .../dnsfo-run). Plain bash: it does not
# need the bash-completion package's helpers.

_dnsfo_run_args() { # the words after `dnsfo run`: options, then a command and its arguments
    local cur=$1 i=$2
    local opts="--attempt-delay --timeout --dead-ttl -v --verbose --log-file --disable -q --quiet -h --help -V --version --"
    while ((i < COMP_CWORD)); do
        case ${COMP_WORDS[i]} in
            --) ((i++)); break ;;
            --attempt-delay | --timeout | --dead-ttl | --log-file) ((i += 2)) ;;
            -*) ((i++)) ;;
            *) break ;;
        esac
    done
    if ((i < COMP_CWORD)); then
        # The program's own arguments: files.
        COMPREPLY=($(compgen -f -- "$cur"))
        return
    fi
    case ${COMP_WORDS[COMP_CWORD - 1]} in
        --log-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --attempt-delay | --timeout | --dead-ttl) COMPREPLY=(); return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        COMPREPLY=($(compgen -c -- "$cur"))
    fi
}

_dnsfo() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local cmds="run check demo cache on off status env settings help version"
    if [[ ${COMP_WORDS[0]##*/} == dnsfo-run ]]; then
        _dnsfo_run_args "$cur" 1
        return
    fi
    if ((COMP_CWORD == 1)); then
        COMPREPLY=($(compgen -W "$cmds -h --help -V --version" -- "$cur"))
        return
    fi
    local prev=${COMP_WORDS[COMP_CWORD - 1]}
    case ${COMP_WORDS[1]} in
        run) _dnsfo_run_args "$cur" 2 ;;
        check)
            case $prev in
                --timeout | --attempt-delay) COMPREPLY=() ;;
                *) COMPREPLY=($(compgen -W "--timeout --attempt-delay --json -h --help" -- "$cur"))
                   [[ $cur == -* ]] || COMPREPLY+=($(compgen -A hostname -- "$cur")) ;;
            esac ;;
        demo) COMPREPLY=($(compgen -W "--cutoff --port -h --help" -- "$cur")) ;;
        cache) ((COMP_CWORD == 2)) && COMPREPLY=($(compgen -W "list flush -h --help" -- "$cur")) ;;
        env) COMPREPLY=($(compgen -W "--systemd --docker -h --help" -- "$cur")) ;;
        settings) COMPREPLY=($(compgen -W "--markdown --man --man-conf -h --help" -- "$cur")) ;;
        help) ((COMP_CWORD == 2)) && COMPREPLY=($(compgen -W "$cmds" -- "$cur")) ;;
    esac
}

complete -F _dnsfo dnsfo dnsfo-run
