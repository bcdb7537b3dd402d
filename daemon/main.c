/* SPDX-License-Identifier: MIT */
/*
 * mmapd's entry point: options and config file (--config FILE, else /etc/mmapd/mmapd.json when
 * it exists, unless --no-config), then (unless --foreground, or when a
 * service manager waits for our readiness on $NOTIFY_SOCKET) the classic daemonisation, in
 * which the parent stays until the child listens so that its exit status tells whether the
 * daemon started. Then the server runs on a libuv loop until SIGTERM or SIGINT; SIGHUP reads
 * the config file again (settings_reload). Under systemd the listening socket may come from
 * the service manager (socket activation), taken before any fork, along with the anonymous
 * regions a previous run kept in the service manager's fd store (fdstore.h).
 * `mmapd --check-config [FILE]` only reads the config file and reports every problem in it.
 *
 * Exit status: 0 after an orderly shutdown (and --help, --version), 1 when startup fails,
 * 2 for a bad command line or config file. --check-config: 0 when the file is valid (or
 * there is none), 1 when it is not, 2 for a bad command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "fdstore.h"
#include "log.h"
#include "sdnotify.h"
#include "server.h"

#define EXIT_STARTUP 1
#define EXIT_USAGE   2

/* Settings given on the command line; they win over the config file. */
struct cli {
	const char *socket_path;
	const char *data_dir;
	const char *config_path;  /* --config, or --check-config's FILE */
	bool no_config;           /* --no-config: the defaults and the command line only */
	bool check_config;        /* --check-config: check the file, then exit */
	int log_level;            /* -1: not given */
	bool foreground;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: mmapd [OPTION]...\n"
	        "       mmapd --check-config [FILE]\n"
	        "Serve shared memory-mapped regions to local clients over a Unix socket.\n"
	        "\n"
	        "  -s, --socket PATH      listen on PATH (default " CONFIG_DEFAULT_SOCKET ")\n"
	        "  -d, --data-dir DIR     keep file regions in DIR (default " CONFIG_DEFAULT_DATA_DIR ")\n"
	        "  -c, --config FILE      read settings from the JSON object in FILE\n"
	        "                         (default " CONFIG_DEFAULT_PATH ", when it exists)\n"
	        "      --no-config        read no config file, not even the default one\n"
	        "  -t, --check-config     check FILE (or the config file) and exit: 0 valid, 1 not\n"
	        "  -l, --log-level LEVEL  error, warn, info (default) or debug\n"
	        "  -f, --foreground       do not daemonise\n"
	        "  -V, --version          print the version and exit\n"
	        "  -h, --help             print this help and exit\n"
	        "\n"
	        "Command-line options override the config file. See mmapd(8).\n");
}

/* Parses argv into *cli. Returns -1 to go on, or an exit status. */
static int cli_parse(int argc, char **argv, struct cli *cli)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "no-config", no_argument, NULL, 'n' },
		{ "check-config", no_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	memset(cli, 0, sizeof(*cli));
	cli->log_level = -1;
	while ((opt = getopt_long(argc, argv, "s:d:c:l:ftVh", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			cli->socket_path = optarg;
			break;
		case 'd':
			cli->data_dir = optarg;
			break;
		/* The later of --config and --no-config wins (make run's RUNFLAGS may add one). */
		case 'c':
			cli->config_path = optarg;
			cli->no_config = false;
			break;
		case 'n':
			cli->config_path = NULL;
			cli->no_config = true;
			break;
		case 't':
			cli->check_config = true;
			break;
		case 'l':
			cli->log_level = log_level_parse(optarg);
			if (cli->log_level < 0) {
				fprintf(stderr, "mmapd: --log-level must be error, warn, info or debug\n");
				return EXIT_USAGE;
			}
			break;
		case 'f':
			cli->foreground = true;
			break;
		case 'V':
			printf("mmapd %s\n", MMAPD_VERSION_STRING);
			return EXIT_SUCCESS;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	/* --check-config FILE: the one operand there is. */
	if (cli->check_config && optind + 1 == argc) {
		cli->config_path = argv[optind++];
		cli->no_config = false;
	}
	if (optind < argc) {
		fprintf(stderr, "mmapd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((cli->socket_path && !*cli->socket_path) || (cli->data_dir && !*cli->data_dir) ||
	    (cli->config_path && !*cli->config_path)) {
		fprintf(stderr, "mmapd: paths must not be empty\n");
		return EXIT_USAGE;
	}
	return -1;
}

/*
 * The config file in effect: --config's, else the default one when it exists (or cannot be
 * looked at: then reading it says why), else none (NULL). Asked again at each reload, so a
 * default file written after the start is read by the next SIGHUP.
 */
static const char *cli_config_path(const struct cli *cli)
{
	if (cli->config_path || cli->no_config)
		return cli->config_path;
	if (access(CONFIG_DEFAULT_PATH, F_OK) == 0 || errno != ENOENT)
		return CONFIG_DEFAULT_PATH;
	return NULL;
}

/* --check-config: reads the file as a start would, and reports every problem in it. */
static int config_check(const struct cli *cli)
{
	const char *path = cli_config_path(cli);
	struct config cfg;
	int r;

	if (!path) {
		if (cli->no_config)
			printf("mmapd: --no-config: no config file is read, the defaults apply\n");
		else
			printf("mmapd: no config file (%s does not exist): the defaults apply\n",
			       CONFIG_DEFAULT_PATH);
		return EXIT_SUCCESS;
	}
	if (config_init(&cfg) < 0) {
		fprintf(stderr, "mmapd: out of memory\n");
		return EXIT_FAILURE;
	}
	r = config_load_file_report(&cfg, path, stderr);
	config_done(&cfg);
	if (r < 0)
		return EXIT_FAILURE;
	printf("%s: valid\n", path);
	return EXIT_SUCCESS;
}

/* Builds the settings: defaults, then the config file, then the command line. */
static int settings_load(const struct cli *cli, struct config *cfg)
{
	const char *path = cli_config_path(cli);

	if (config_init(cfg) < 0)
		return EXIT_STARTUP;
	if (path && config_load_file(cfg, path) < 0)
		return EXIT_USAGE;
	if ((cli->socket_path && config_set_string(&cfg->socket_path, cli->socket_path) < 0) ||
	    (cli->data_dir && config_set_string(&cfg->data_dir, cli->data_dir) < 0))
		return EXIT_STARTUP;
	if (cli->log_level >= 0)
		cfg->log_level = cli->log_level;
	return -1;
}

/* What a SIGHUP needs: the command line (which still wins) and the live settings. */
struct reload_ctx {
	const struct cli *cli;
	struct config *cfg;
};

/*
 * SIGHUP: reads the settings again as at startup and applies what may change. A config file
 * that is now unreadable or invalid changes nothing.
 */
static void settings_reload(struct server *s, void *arg)
{
	struct reload_ctx *ctx = arg;
	struct config next = { 0 };
	const char *path = cli_config_path(ctx->cli);

	(void)s;
	if (settings_load(ctx->cli, &next) >= 0) {
		log_error("configuration reload failed; keeping the configuration in effect");
		config_done(&next);
		return;
	}
	config_reload_from(ctx->cfg, &next);
	config_done(&next);
	log_set_level((enum log_level)ctx->cfg->log_level);
	if (path)
		log_info("configuration reloaded from %s", path);
	else
		log_info("configuration reloaded: no %s, the defaults apply", CONFIG_DEFAULT_PATH);
}

/* Makes *path absolute against the current directory (before a daemon leaves it). */
static int path_absolute(char **path)
{
	char *cwd, *abs;

	if ((*path)[0] == '/')
		return 0;
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return -errno;
	if (asprintf(&abs, "%s/%s", cwd, *path) < 0) {
		free(cwd);
		return -ENOMEM;
	}
	free(cwd);
	free(*path);
	*path = abs;
	return 0;
}

/* Opens /dev/null on 0, 1 and 2 where nothing is open, so no socket ever lands there. */
static void std_fds_fill(void)
{
	int fd;

	for (fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		if (open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) < 0)
			break;
	}
}

/*
 * Forks. The parent waits for the child's status byte on a pipe and exits with it; the child
 * returns the pipe's write end, on which it reports once it listens (or fails).
 */
static int daemonise(void)
{
	int pipefd[2];
	pid_t pid;
	int devnull;

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		log_error("cannot create a pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_error("cannot fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		unsigned char status = EXIT_STARTUP;
		ssize_t n;

		close(pipefd[1]);
		do
			n = read(pipefd[0], &status, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 ? status : EXIT_STARTUP);
	}
	close(pipefd[0]);
	if (setsid() < 0)
		log_warn("setsid failed: %s", strerror(errno));
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDOUT_FILENO);
		if (devnull > STDERR_FILENO)
			close(devnull);
	}
	if (chdir("/") < 0)
		log_warn("cannot change directory to /: %s", strerror(errno));
	return pipefd[1];
}

/* Tells the waiting parent (if any) how startup ended. */
static void report_status(int *notify_fd, unsigned char status)
{
	ssize_t n;

	if (*notify_fd < 0)
		return;
	do
		n = write(*notify_fd, &status, 1);
	while (n < 0 && errno == EINTR);
	close(*notify_fd);
	*notify_fd = -1;
}

int main(int argc, char **argv)
{
	struct config cfg = { 0 };
	struct server srv;
	struct cli cli;
	uv_loop_t loop;
	bool loop_ready = false, srv_ready = false;
	struct reload_ctx reload = { &cli, &cfg };
	struct sdlisten passed = { .listen_fd = -1 };
	int notify_fd = -1;
	int status, r;

	std_fds_fill();
	log_init(LOG_LEVEL_INFO);
	status = cli_parse(argc, argv, &cli);
	if (status >= 0)
		return status;
	if (cli.check_config)
		return config_check(&cli);
	status = settings_load(&cli, &cfg);
	if (status >= 0)
		goto out;
	log_set_level((enum log_level)cfg.log_level);
	status = EXIT_STARTUP;
	/* Before a fork changes our pid, which $LISTEN_PID names. */
	if (sdlisten_take(fdstore_name_is_ours, &passed) < 0)
		goto out;

	signal(SIGPIPE, SIG_IGN);
	if (!cli.foreground && !sdnotify_wanted()) {
		if (path_absolute(&cfg.socket_path) < 0 || path_absolute(&cfg.data_dir) < 0) {
			log_error("cannot resolve the socket and data directory paths: %s",
			          strerror(errno));
			goto out;
		}
		notify_fd = daemonise();
		if (notify_fd < 0)
			goto out;
	}

	r = uv_loop_init(&loop);
	if (r < 0) {
		log_error("cannot create the event loop: %s", uv_strerror(r));
		goto out;
	}
	loop_ready = true;
	srv_ready = true;
	r = server_init(&srv, &loop, &cfg, &passed);
	if (r < 0 || server_start(&srv) < 0)
		goto out;
	if (!cli.no_config) {
		srv.reload = settings_reload;
		srv.reload_arg = &reload;
	}

	log_info("mmapd %s listening on %s%s, data directory %s", MMAPD_VERSION_STRING,
	         srv.activated ? "the socket passed by the service manager, " : "",
	         cfg.socket_path, cfg.data_dir);
	server_sd_report(&srv, true);
	report_status(&notify_fd, EXIT_SUCCESS);

	uv_run(&loop, UV_RUN_DEFAULT);
	status = EXIT_SUCCESS;
	log_info("mmapd stopped");

out:
	report_status(&notify_fd, (unsigned char)status);
	sdlisten_done(&passed);
	if (srv_ready) {
		server_done(&srv);
		/* Handles closed by server_done need one more turn of the loop to finish. */
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	if (loop_ready && uv_loop_close(&loop) < 0)
		log_debug("event loop still had handles at exit");
	config_done(&cfg);
	return status;
}
