// Package pgtest gives tests a PostgreSQL database of their own.
//
// The server comes from RAWEVENTS_TEST_DATABASE_URL (default: the local
// server on 127.0.0.1:5432, user postgres, database test). Each test gets
// a fresh schema that is dropped when it ends, so tests run in parallel.
// When the server cannot be reached the test is skipped, except in CI
// (CI set), where it fails: PostgreSQL tests must never be skipped there.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultURL is the server tests use when RAWEVENTS_TEST_DATABASE_URL is
// not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL returns the test server's connection URL.
func URL() string {
	if u := os.Getenv("RAWEVENTS_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Pool returns a pool on the test database, closed when t ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	config, err := pgxpool.ParseConfig(URL())
	if err != nil {
		t.Fatalf("RAWEVENTS_TEST_DATABASE_URL: %v", err)
	}
	config.MaxConns = 32 // room for every writer of the concurrency tests
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		SkipOrFail(t, fmt.Sprintf("PostgreSQL at %s is not reachable (%v); set RAWEVENTS_TEST_DATABASE_URL", URL(), err))
	}
	t.Cleanup(pool.Close)
	return pool
}

// SkipOrFail skips t for why, except in CI (CI set), where it fails it:
// what the PostgreSQL tests need must be there in CI.
func SkipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("required in CI: %s", why)
	}
	t.Skip(why)
}

// Schema returns the name of a fresh schema that is dropped when t ends.
// The schema itself is not created: migrations create it.
func Schema(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}
