// Command ferretdb-launcher runs FerretDB (SQLite handler) as a local test
// server for idsync, using FerretDB's embeddable package.
//
// Why a launcher of our own: the upstream cmd/ferretdb binary built with
// `go install` panics at start (it wants a generated version file the module
// does not ship). The embeddable package needs none, keeps telemetry off and
// does not start the debug HTTP listener (127.0.0.1:8088) that the CLI has.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27018", "TCP address to listen on")
	dataDir := flag.String("sqlite-dir", "data", "directory holding one <db>.sqlite file per database")
	pragmas := flag.String("sqlite-params", "",
		"query string appended to the SQLite URL, e.g. \"_pragma=synchronous(off)\"")
	logLevel := flag.String("log-level", "info", "debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fatal("bad -log-level: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		fatal("bad -sqlite-dir: %v", err)
	}
	if err = os.MkdirAll(dir, 0o755); err != nil {
		fatal("cannot create %s: %v", dir, err)
	}

	// FerretDB wants a "file:" URI naming an existing directory, ending in "/".
	sqliteURL := "file:" + dir + "/"
	if p := strings.TrimPrefix(*pragmas, "?"); p != "" {
		sqliteURL += "?" + p
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		fatal("%v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	logger.Info("ferretdb-launcher starting", "listen", *listen, "sqlite", sqliteURL)
	if err = f.Run(ctx); err != nil {
		fatal("%v", err)
	}
	logger.Info("ferretdb-launcher stopped")
}

func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ferretdb-launcher: "+format+"\n", args...)
	os.Exit(1)
}
