# Cloud Workstation: the commands typed in interactive bash shells, for the course's integrity record.
# Sourced by /etc/profile (login shells: SSH, the browser terminal) and /etc/bash.bashrc (shells started from
# them) only while the course records commands; each line is written only while the agent's log
# /var/log/cwc/commands.jsonl exists. Scripts and `ssh host command` (not interactive) never run it.
# Not a lock: the student's own shell runs it, and can turn it off. The agent redacts secrets before sending.
if [ -n "${BASH_VERSION:-}" ] && [[ $- == *i* ]] && [ -z "${__cwc_cmd_hook:-}" ]; then
  __cwc_cmd_hook=1
  __cwc_cmd_last=
  __cwc_cmd_json() {  # $1 as a JSON string's content, into __cwc_cmd_out (no subshell)
    local s=${1:0:2000}
    s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/\\r}
    __cwc_cmd_out=${s//[[:cntrl:]]/?}
  }
  __cwc_cmd_record() {
    local rc=$? h=${HISTCMD:-} entry n line cwd now sess=${CWC_SESSION:-}
    # HISTCMD moves when the shell adds a line to its history (no subshell at a prompt with nothing new)
    if [ -z "$__cwc_cmd_last" ] || [ "$h" = "$__cwc_cmd_last" ] || [ ! -e /var/log/cwc/commands.jsonl ]; then
      __cwc_cmd_last=$h  # the first prompt, nothing new, or not recording now
      return $rc
    fi
    __cwc_cmd_last=$h
    entry=$(HISTTIMEFORMAT='' builtin history 1)
    [[ $entry =~ ^[[:space:]]*([0-9]+)[*[:space:]]+(.*)$ ]] || return $rc
    n=${BASH_REMATCH[1]} line=${BASH_REMATCH[2]}
    __cwc_cmd_json "$line"; line=$__cwc_cmd_out
    __cwc_cmd_json "$PWD"; cwd=$__cwc_cmd_out
    __cwc_cmd_json "${SSH_CONNECTION:-}"
    printf -v now '%(%s)T' -1
    printf '{"line":"%s","cwd":"%s","at":%s,"exit":%d,"n":%d,"session":"%s","ssh":"%s"}\n' "$line" "$cwd" \
      "$now" "$rc" "$n" "${sess//[^0-9A-Za-z_-]/}" "$__cwc_cmd_out" \
      >>/var/log/cwc/commands.jsonl 2>/dev/null
    return $rc
  }
  if (( BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1) )); then
    PROMPT_COMMAND[9]=__cwc_cmd_record  # an element of its own: `PROMPT_COMMAND=...` in .bashrc keeps it
  else
    PROMPT_COMMAND="__cwc_cmd_record${PROMPT_COMMAND:+; $PROMPT_COMMAND}"
  fi
fi
