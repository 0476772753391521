package server

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Config is everything the gateway reads from its environment (DESIGN.md §4).
type Config struct {
	DatabaseURL             string        // DATABASE_URL; empty: the private PostgreSQL
	ListenAddr              string        // LISTEN_ADDR [127.0.0.1:8080]
	PublicURL               string        // PUBLIC_URL [http:// + LISTEN_ADDR], no trailing slash
	DevMode                 bool          // DEV_MODE [on without DATABASE_URL]
	DevOperators            []string      // DEV_OPERATORS [operator@example.test]
	OIDCIssuerURL           string        // OIDC_ISSUER_URL [PUBLIC_URL/dev in DEV_MODE]
	OIDCAudience            string        // OIDC_AUDIENCE [provider-access-gateway in DEV_MODE]
	OperatorClaim           string        // OPERATOR_CLAIM claim name [groups]
	OperatorValue           string        // OPERATOR_CLAIM value [payer-operators]
	Playground              bool          // PLAYGROUND [DEV_MODE]
	Introspection           bool          // INTROSPECTION [DEV_MODE]
	KeyEncryptionKey        []byte        // KEY_ENCRYPTION_KEY, 32 bytes [dev key in DEV_MODE]
	ExportDir               string        // EXPORT_DIR [.data/exports]
	ExportWorkers           int           // EXPORT_WORKERS [CPUs]
	ExportRetention         time.Duration // EXPORT_RETENTION [24h]
	AttributionUpcomingDays int           // ATTRIBUTION_UPCOMING_DAYS [30]
	MigrateOnStart          bool          // MIGRATE_ON_START [true]
	SMTPURL                 string        // SMTP_URL
	CORSAllowedOrigins      []string      // CORS_ALLOWED_ORIGINS
	OTLPEndpoint            string        // OTEL_EXPORTER_OTLP_ENDPOINT
	LogLevel                slog.Level    // LOG_LEVEL [info]
	ShutdownTimeout         time.Duration // SHUTDOWN_TIMEOUT [15s]
	DBMaxConns              int           // DB_MAX_CONNS [2 × CPUs]
	DBStatementTimeout      time.Duration // DB_STATEMENT_TIMEOUT [10s]: per statement of a request
	GraphQLAllowlist        string        // GRAPHQL_ALLOWLIST: file of the only operations that run [none: any]
}

// devKeyEncryptionKey encrypts signing keys in DEV_MODE only, where the
// database is the private one and holds synthetic data.
var devKeyEncryptionKey = []byte("provider-access-gateway-dev-key!")

// LoadConfig reads the configuration through getenv and reports every
// problem at once.
func LoadConfig(getenv func(string) string) (Config, error) {
	var errs []error
	str := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	boolean := func(key string, def bool) bool {
		v := strings.TrimSpace(getenv(key))
		if v == "" {
			return def
		}
		switch strings.ToLower(v) {
		case "1", "true", "on", "yes":
			return true
		case "0", "false", "off", "no":
			return false
		}
		errs = append(errs, fmt.Errorf("%s: %q is not a boolean (1/0, true/false, on/off)", key, v))
		return def
	}
	integer := func(key string, def, min int) int {
		v := strings.TrimSpace(getenv(key))
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			errs = append(errs, fmt.Errorf("%s: %q is not an integer ≥ %d", key, v, min))
			return def
		}
		return n
	}
	duration := func(key string, def time.Duration) time.Duration {
		v := strings.TrimSpace(getenv(key))
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive duration (e.g. 15s, 24h)", key, v))
			return def
		}
		return d
	}
	list := func(key, def string) []string {
		var out []string
		for _, s := range strings.Split(str(key, def), ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}

	cpus := runtime.NumCPU()
	c := Config{
		DatabaseURL:             str("DATABASE_URL", ""),
		ListenAddr:              str("LISTEN_ADDR", "127.0.0.1:8080"),
		ExportDir:               str("EXPORT_DIR", ".data/exports"),
		ExportWorkers:           integer("EXPORT_WORKERS", cpus, 0),
		ExportRetention:         duration("EXPORT_RETENTION", 24*time.Hour),
		AttributionUpcomingDays: integer("ATTRIBUTION_UPCOMING_DAYS", 30, 0),
		MigrateOnStart:          boolean("MIGRATE_ON_START", true),
		SMTPURL:                 str("SMTP_URL", ""),
		CORSAllowedOrigins:      list("CORS_ALLOWED_ORIGINS", ""),
		OTLPEndpoint:            str("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
		ShutdownTimeout:         duration("SHUTDOWN_TIMEOUT", 15*time.Second),
		DBMaxConns:              integer("DB_MAX_CONNS", 2*cpus, 1),
		DBStatementTimeout:      duration("DB_STATEMENT_TIMEOUT", 10*time.Second),
		GraphQLAllowlist:        str("GRAPHQL_ALLOWLIST", ""),
	}
	c.DevMode = boolean("DEV_MODE", c.DatabaseURL == "")
	c.PublicURL = strings.TrimRight(str("PUBLIC_URL", "http://"+c.ListenAddr), "/")
	c.DevOperators = list("DEV_OPERATORS", "operator@example.test")
	c.Playground = boolean("PLAYGROUND", c.DevMode)
	c.Introspection = boolean("INTROSPECTION", c.DevMode)

	if err := c.LogLevel.UnmarshalText([]byte(str("LOG_LEVEL", "info"))); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %w", err))
	}
	if c.OTLPEndpoint != "" {
		if _, err := tracesURL(c.OTLPEndpoint); err != nil {
			errs = append(errs, err)
		}
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("PUBLIC_URL: %q is not an absolute http(s) URL", c.PublicURL))
	}
	host, _, err := net.SplitHostPort(c.ListenAddr)
	if err != nil {
		errs = append(errs, fmt.Errorf("LISTEN_ADDR: %q is not host:port", c.ListenAddr))
	} else if c.DevMode && !isLoopback(host) {
		errs = append(errs, fmt.Errorf("DEV_MODE is on, but LISTEN_ADDR %q is not a loopback address: development sign-in must never be reachable from the network", c.ListenAddr))
	}

	if c.DevMode {
		c.OIDCIssuerURL = str("OIDC_ISSUER_URL", c.PublicURL+"/dev")
		c.OIDCAudience = str("OIDC_AUDIENCE", "provider-access-gateway")
	} else {
		c.OIDCIssuerURL = str("OIDC_ISSUER_URL", "")
		c.OIDCAudience = str("OIDC_AUDIENCE", "")
		if c.OIDCIssuerURL != "" && c.OIDCAudience == "" {
			errs = append(errs, errors.New("OIDC_AUDIENCE is required with OIDC_ISSUER_URL"))
		}
	}
	if c.OIDCIssuerURL != "" && strings.TrimRight(c.OIDCIssuerURL, "/") == c.PublicURL {
		errs = append(errs, errors.New("OIDC_ISSUER_URL must not be PUBLIC_URL: that is the gateway's own issuer of client tokens"))
	}
	claim := str("OPERATOR_CLAIM", "groups=payer-operators")
	name, value, ok := strings.Cut(claim, "=")
	if !ok || name == "" || value == "" {
		errs = append(errs, fmt.Errorf("OPERATOR_CLAIM: %q is not claim=value", claim))
	}
	c.OperatorClaim, c.OperatorValue = name, value

	switch kek := getenv("KEY_ENCRYPTION_KEY"); {
	case kek != "":
		b, err := base64.StdEncoding.DecodeString(kek)
		if err != nil || len(b) != 32 {
			errs = append(errs, errors.New("KEY_ENCRYPTION_KEY: want the base64 of 32 random bytes (openssl rand -base64 32)"))
		}
		c.KeyEncryptionKey = b
	case c.DevMode:
		c.KeyEncryptionKey = devKeyEncryptionKey
	}
	if c.ExportWorkers == 0 {
		c.ExportWorkers = cpus
	}
	return c, errors.Join(errs...)
}

// RequireServeSettings reports what `serve` needs beyond LoadConfig.
func (c Config) RequireServeSettings() error {
	if len(c.KeyEncryptionKey) != 32 {
		return errors.New("KEY_ENCRYPTION_KEY is required (the base64 of 32 random bytes: openssl rand -base64 32) unless DEV_MODE is on")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
