# bash completion for ferry (installed by cmake --install to share/bash-completion/completions/ferry).
# Completes the commands, each command's options (as `ferry <command> --help` lists them) and their values:
# files for --config, --journal, --report, --output, --html; directories for --plugin-path; the fixed values of
# --progress, --log-format, --format; stage names from the configuration for --stage; plugin names for
# --describe.
_ferry_stages() { # the stage names of the configuration on the command line (or ./ferry.json)
  local cfg=ferry.json i
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    case ${COMP_WORDS[i]} in -c | --config) cfg=${COMP_WORDS[i + 1]} ;; esac
  done
  [ -r "$cfg" ] || return 0
  grep -o '"name"[[:space:]]*:[[:space:]]*"[^"]*"' "$cfg" 2>/dev/null | sed 's/.*"\([^"]*\)"$/\1/'
}

_ferry() {
  local cur prev cmd i
  COMPREPLY=()
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD - 1]}
  local commands="plan run verify status export-map report plugins journal version help"
  local common="--config --journal --plugin-path --verbose --quiet --log-format --help"
  local pipeline="--limit --stage --report --progress --html"
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in -*) ;; *) cmd=${COMP_WORDS[i]}; break ;; esac
  done
  if [ -z "$cmd" ]; then
    COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
    return 0
  fi
  case $prev in
  -c | --config | --journal | --report | --output | --html) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
  --plugin-path) COMPREPLY=($(compgen -d -- "$cur")); return 0 ;;
  --progress) COMPREPLY=($(compgen -W "auto tty plain none" -- "$cur")); return 0 ;;
  --log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return 0 ;;
  --format) COMPREPLY=($(compgen -W "csv json" -- "$cur")); return 0 ;;
  --stage) COMPREPLY=($(compgen -W "$(_ferry_stages)" -- "$cur")); return 0 ;;
  --describe)
    COMPREPLY=($(compgen -W "$(ferry plugins 2>/dev/null | awk 'NR > 1 && /^[^ ]/ { print $1 }')" -- "$cur"))
    return 0 ;;
  --limit | --kind | --run | --worker | --lease) return 0 ;;
  esac
  local opts
  case $cmd in
  plan | verify) opts="$common $pipeline" ;;
  run) opts="$common $pipeline --repair --worker --lease" ;;
  status) opts="$common --items --stage --json" ;;
  export-map) opts="$common --format --kind --stage --output" ;;
  report) opts="$common --html --run" ;;
  plugins) opts="$common --describe --json" ;;
  journal)
    [ "$COMP_CWORD" = 2 ] && [[ $cur != -* ]] && { COMPREPLY=($(compgen -W "copy" -- "$cur")); return 0; }
    [[ $cur != -* ]] && { COMPREPLY=($(compgen -f -- "$cur")); return 0; }
    opts="--replace --quiet --help" ;;
  version) opts="--help" ;;
  help) COMPREPLY=($(compgen -W "$commands" -- "$cur")); return 0 ;;
  *) return 0 ;;
  esac
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -F _ferry ferry
