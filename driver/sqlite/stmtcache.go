package sqlite

import (
	"context"
	"database/sql/driver"
	"strings"
	"sync"

	sqlite3 "modernc.org/sqlite"
)

// maxCachedStatements bounds each connection's statement cache. The
// driver's own queries are a fixed set, far below it; the read models'
// are per table and generation, and a full cache makes room by closing a
// statement no one is reading, so that a new generation's are cached too.
const maxCachedStatements = 256

// connector opens connections that keep their prepared statements:
// database/sql prepares a statement for every call otherwise, and SQLite
// spends much of a small query's time parsing it.
type connector struct {
	dsn string
	drv *sqlite3.Driver
}

// Connect implements driver.Connector.
func (c *connector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &cachingConn{conn: conn.(sqliteConn), stmts: map[string]*cachedStmt{}}, nil
}

// Driver implements driver.Connector.
func (c *connector) Driver() driver.Driver { return c.drv }

// sqliteConn is what modernc's connection implements and cachingConn
// passes on.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.QueryerContext
	driver.ExecerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// cachingConn is one connection with a statement cache. database/sql uses a
// connection from one goroutine at a time, so the cache needs no lock; the
// busy flag only guards a statement whose rows are still being read.
type cachingConn struct {
	conn  sqliteConn
	stmts map[string]*cachedStmt
}

type cachedStmt struct {
	stmt interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	}
	mu   sync.Mutex
	busy bool
}

// statement returns the cached statement for query, preparing it the
// first time; nil when query is not cacheable (a script) or the
// statement's rows are still open.
func (c *cachingConn) statement(ctx context.Context, query string) (*cachedStmt, error) {
	if strings.Contains(query, ";") {
		return nil, nil // a script: prepared statements hold one statement
	}
	s, ok := c.stmts[query]
	if !ok {
		if len(c.stmts) >= maxCachedStatements && !c.evict() {
			return nil, nil
		}
		prepared, err := c.conn.PrepareContext(ctx, query)
		if err != nil {
			return nil, err
		}
		stmt, ok := prepared.(interface {
			driver.Stmt
			driver.StmtExecContext
			driver.StmtQueryContext
		})
		if !ok {
			prepared.Close()
			return nil, nil
		}
		s = &cachedStmt{stmt: stmt}
		c.stmts[query] = s
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy {
		return nil, nil
	}
	s.busy = true
	return s, nil
}

// evict closes one cached statement whose rows are not being read (any
// one: map order) and reports whether it found one.
func (c *cachingConn) evict() bool {
	for q, s := range c.stmts {
		s.mu.Lock()
		busy := s.busy
		s.mu.Unlock()
		if !busy {
			s.stmt.Close()
			delete(c.stmts, q)
			return true
		}
	}
	return false
}

func (s *cachedStmt) release() {
	s.mu.Lock()
	s.busy = false
	s.mu.Unlock()
}

// QueryContext implements driver.QueryerContext.
func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.statement(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.conn.QueryContext(ctx, query, args)
	}
	rows, err := s.stmt.QueryContext(ctx, args)
	if err != nil {
		s.release()
		return nil, err
	}
	return &cachedRows{Rows: rows, stmt: s}, nil
}

// ExecContext implements driver.ExecerContext.
func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.statement(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.conn.ExecContext(ctx, query, args)
	}
	defer s.release()
	return s.stmt.ExecContext(ctx, args)
}

// cachedRows gives its statement back when closed.
type cachedRows struct {
	driver.Rows
	stmt *cachedStmt
	once sync.Once
}

// Close implements driver.Rows.
func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(r.stmt.release)
	return err
}

// Close implements driver.Conn: it finalizes the cached statements first.
func (c *cachingConn) Close() error {
	for q, s := range c.stmts {
		s.stmt.Close()
		delete(c.stmts, q)
	}
	return c.conn.Close()
}

// Prepare implements driver.Conn.
func (c *cachingConn) Prepare(query string) (driver.Stmt, error) { return c.conn.Prepare(query) }

// PrepareContext implements driver.ConnPrepareContext.
func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.conn.PrepareContext(ctx, query)
}

// Begin implements driver.Conn.
func (c *cachingConn) Begin() (driver.Tx, error) { return c.conn.Begin() } //nolint:staticcheck // required by driver.Conn

// BeginTx implements driver.ConnBeginTx.
func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.conn.BeginTx(ctx, opts)
}

// Ping implements driver.Pinger.
func (c *cachingConn) Ping(ctx context.Context) error { return c.conn.Ping(ctx) }

// ResetSession implements driver.SessionResetter.
func (c *cachingConn) ResetSession(ctx context.Context) error { return c.conn.ResetSession(ctx) }

// IsValid implements driver.Validator.
func (c *cachingConn) IsValid() bool { return c.conn.IsValid() }
