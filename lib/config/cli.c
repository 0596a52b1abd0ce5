/* cli.c: see cli.h. */
#include "lib/config/cli.h"

#include <getopt.h>
#include <signal.h>

#include "lib/base/log.h"

int ss_cli_parse(ss_cli *cli, int argc, char **argv, void (*usage)(FILE *out))
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "check-config", no_argument, NULL, 'C' },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cli->config_path = optarg; break;
        case 'C': cli->check = 1; break;
        case 'l': cli->log_level = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("%s %s\n", cli->prog, SS_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", cli->prog, argv[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

ss_config *ss_cli_load(const ss_cli *cli)
{
    char err[1024];
    ss_config *cfg = NULL;
    int rc = cli->config_path
        ? ss_config_load_file(cli->config_path, &cfg, err, sizeof err)
        : ss_config_load_string(ss_config_embedded_yaml, "(embedded defaults)", &cfg, err,
                                sizeof err);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", cli->prog, err);
        return NULL;
    }
    return cfg;
}

int ss_cli_setup(const ss_cli *cli, ss_config *cfg)
{
    if (cli->check) {
        ss_config_print(cfg, stdout);
        fprintf(stderr, "%s: configuration %s is valid\n", cli->prog, cfg->source);
        ss_config_free(cfg);
        return 0;
    }
    const char *level = cli->log_level ? cli->log_level : cfg->log_level;
    int lv = ss_log_parse_level(level);
    if (lv < 0) {
        fprintf(stderr, "%s: unknown log level '%s'\n", cli->prog, level);
        ss_config_free(cfg);
        return 2;
    }
    ss_log_set_level((ss_log_level)lv);
    signal(SIGPIPE, SIG_IGN);
    return -1;
}
