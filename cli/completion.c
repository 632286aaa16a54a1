#include "config.h"

#include "cli.h"

#include <stdio.h>
#include <string.h>

/* Completes commands and flags; VM and image names come from the daemon
 * through the hidden `banger __complete-names vm|image`. */
static const char completion_bash[] =
    "# bash completion for banger; load with: source <(banger completion bash)\n"
    "\n"
    "_banger_names()\n"
    "{\n"
    "    local i sock=()\n"
    "    for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do\n"
    "        case ${COMP_WORDS[i]} in\n"
    "            --socket) sock=(--socket \"${COMP_WORDS[i+1]}\") ;;\n"
    "            --socket=*) sock=(\"${COMP_WORDS[i]}\") ;;\n"
    "        esac\n"
    "    done\n"
    "    \"${COMP_WORDS[0]}\" \"${sock[@]}\" __complete-names \"$1\" 2>/dev/null\n"
    "}\n"
    "\n"
    "_banger()\n"
    "{\n"
    "    local cur=${COMP_WORDS[COMP_CWORD]}\n"
    "    local prev=${COMP_WORDS[COMP_CWORD-1]}\n"
    "    local global=\"--socket --json --help\"\n"
    "    local opts=\"\" names=\"\" i\n"
    "    local words=()\n"
    "\n"
    "    # The words typed so far, without the global flags.\n"
    "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
    "        case ${COMP_WORDS[i]} in\n"
    "            --socket) ((i++)) ;;\n"
    "            --json|--socket=*) ;;\n"
    "            *) words+=(\"${COMP_WORDS[i]}\") ;;\n"
    "        esac\n"
    "    done\n"
    "\n"
    "    case $prev in\n"
    "        --socket|--rootfs|--kernel|--initrd)\n"
    "            COMPREPLY=($(compgen -f -- \"$cur\"))\n"
    "            return ;;\n"
    "        --signal)\n"
    "            COMPREPLY=($(compgen -W \"KILL TERM INT HUP QUIT\" -- \"$cur\"))\n"
    "            return ;;\n"
    "        --image)\n"
    "            COMPREPLY=($(compgen -W \"$(_banger_names image)\" -- \"$cur\"))\n"
    "            return ;;\n"
    "        --name|--vcpu|--memory|--disk-size)\n"
    "            return ;;\n"
    "    esac\n"
    "\n"
    "    case ${words[0]} in\n"
    "        \"\")\n"
    "            opts=\"vm ps image ssh-config doctor daemon version completion help\" ;;\n"
    "        vm)\n"
    "            if ((${#words[@]} == 1)); then\n"
    "                opts=\"create start stop restart kill delete prune list ls show logs set ping health ports ssh exec run\"\n"
    "            else\n"
    "                case ${words[1]} in\n"
    "                    create) opts=\"--name --image --vcpu --memory --disk-size --nat --no-start\" ;;\n"
    "                    start|stop|restart|delete) names=vm ;;\n"
    "                    kill) opts=\"--signal\"; names=vm ;;\n"
    "                    prune) opts=\"-f --force\" ;;\n"
    "                    show) names=vm ;;\n"
    "                    logs) opts=\"-f --follow --raw\"; names=vm ;;\n"
    "                    set) opts=\"--vcpu --memory\"; names=vm ;;\n"
    "                    ping|health|ports) opts=\"--timeout\"; names=vm ;;\n"
    "                    ssh|exec) names=vm ;;\n"
    "                    run) opts=\"--name --image --vcpu --memory --disk-size --nat --rm -d --include-untracked --dry-run --wait\" ;;\n"
    "                esac\n"
    "            fi ;;\n"
    "        image)\n"
    "            if ((${#words[@]} == 1)); then\n"
    "                opts=\"register import pull build-default list ls show delete\"\n"
    "            else\n"
    "                case ${words[1]} in\n"
    "                    register) opts=\"--name --rootfs --kernel --initrd\" ;;\n"
    "                    import) opts=\"--name --from-tar --kernel --initrd\" ;;\n"
    "                    pull) opts=\"--name --sha256\" ;;\n"
    "                    build-default) opts=\"--name --mirror\" ;;\n"
    "                    show|delete) names=image ;;\n"
    "                esac\n"
    "            fi ;;\n"
    "        daemon)\n"
    "            ((${#words[@]} == 1)) && opts=\"status\" ;;\n"
    "        completion)\n"
    "            ((${#words[@]} == 1)) && opts=\"bash\" ;;\n"
    "    esac\n"
    "\n"
    "    if [[ -n $names && $cur != -* ]]; then\n"
    "        COMPREPLY=($(compgen -W \"$(_banger_names \"$names\")\" -- \"$cur\"))\n"
    "    else\n"
    "        COMPREPLY=($(compgen -W \"$opts $global\" -- \"$cur\"))\n"
    "    fi\n"
    "}\n"
    "\n"
    "complete -F _banger banger\n";

int cmd_completion(struct cli_ctx *ctx, int argc, char **argv)
{
    static const char usage[] =
        "Usage: banger completion bash\n"
        "\n"
        "Print a bash completion script. Load it with:\n"
        "  source <(banger completion bash)\n";

    (void)ctx;
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
        return cli_help(usage);
    if (argc != 2 || strcmp(argv[1], "bash") != 0)
        return cli_usage_error("completion", "give the shell: banger completion bash");
    fputs(completion_bash, stdout);
    return CLI_EXIT_OK;
}
