// Package config reads process settings from CALLTRACK_* environment variables, with
// defaults in one place and Validate naming the bad field.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/calltrack/calltrack/internal/kafkabus"
	"github.com/calltrack/calltrack/internal/redisscript"
	"github.com/calltrack/calltrack/internal/tenant"
)

// Config is every setting of every subcommand; each uses what it needs.
type Config struct {
	HTTPAddr        string        `env:"CALLTRACK_HTTP_ADDR" envDefault:"0.0.0.0:8080"`
	PublicURL       string        `env:"CALLTRACK_PUBLIC_URL"` // how MyOperator and CRM users reach calltrack
	KafkaBrokers    []string      `env:"CALLTRACK_KAFKA_BROKERS" envSeparator:","`
	KafkaTLS        bool          `env:"CALLTRACK_KAFKA_TLS"`
	KafkaSASLMech   string        `env:"CALLTRACK_KAFKA_SASL_MECHANISM"`
	KafkaSASLUser   string        `env:"CALLTRACK_KAFKA_SASL_USERNAME"`
	KafkaSASLPass   tenant.Secret `env:"CALLTRACK_KAFKA_SASL_PASSWORD"`
	KafkaPartitions int           `env:"CALLTRACK_KAFKA_PARTITIONS" envDefault:"6"`
	KafkaRepl       int           `env:"CALLTRACK_KAFKA_REPLICATION" envDefault:"1"`
	KafkaBatchWait  time.Duration `env:"CALLTRACK_KAFKA_BATCH_TIMEOUT"` // the producer's wait for more messages; none when unset
	TopicSuffix     string        `env:"CALLTRACK_TOPIC_SUFFIX"`        // isolates test runs on a shared broker
	RedisAddr       string        `env:"CALLTRACK_REDIS_ADDR"`
	RedisPassword   tenant.Secret `env:"CALLTRACK_REDIS_PASSWORD"`
	RedisPrefix     string        `env:"CALLTRACK_REDIS_PREFIX" envDefault:"ct"`
	TenantsFile     string        `env:"CALLTRACK_TENANTS_FILE"`
	AdminToken      tenant.Secret `env:"CALLTRACK_ADMIN_TOKEN"`
	// AdminAddr, when set, serves the console and the admin API on a listener of their
	// own, and not on HTTPAddr with the webhooks.
	AdminAddr   string `env:"CALLTRACK_ADMIN_ADDR"`
	LogLevel    string `env:"CALLTRACK_LOG_LEVEL" envDefault:"info"`
	WriterGroup string `env:"CALLTRACK_WRITER_GROUP" envDefault:"calltrack-writer"`
	// TrustedProxies are the CIDRs (or addresses) of the proxies in front of calltrack
	// (an ingress controller): requests from them name their client in X-Forwarded-For.
	// Unset, the client is the connection's peer (TrustedProxyRanges).
	TrustedProxies []string `env:"CALLTRACK_TRUSTED_PROXIES" envSeparator:","`
	// WriterLease is how long a writer holds a call while it writes it; a crashed
	// writer's call is taken over (and its create looked up) once it lapses.
	WriterLease time.Duration `env:"CALLTRACK_WRITER_LEASE" envDefault:"2m"`
	// WriterSettle is how long after a create got no answer the CRM is asked for the
	// record: the CRM may still apply a request its client gave up on, and its search
	// lags behind its writes (callwriter.DefaultSettleDelay).
	WriterSettle time.Duration `env:"CALLTRACK_WRITER_SETTLE" envDefault:"2m"`
	// ConsumerMaxBytes bounds what each of work's consumer groups holds in memory
	// (fetched, not yet committed); at the bound it stops fetching.
	ConsumerMaxBytes int64 `env:"CALLTRACK_CONSUMER_MAX_BYTES" envDefault:"33554432"`
	// GCHeapBudget is the heap serve and work let grow before a garbage collection while
	// their live heap is small (gcpace); 0 leaves Go's GOGC as it is.
	GCHeapBudget    int64         `env:"CALLTRACK_GC_HEAP_BUDGET" envDefault:"16777216"`
	ShutdownTimeout time.Duration `env:"CALLTRACK_SHUTDOWN_TIMEOUT" envDefault:"20s"`
	PopupMaxAge     time.Duration `env:"CALLTRACK_POPUP_MAX_AGE" envDefault:"60s"` // older live events are dropped
	// ZohoBatchLinger is the longest a Zoho insert waits for batch-mates while inserts
	// arrive steadily (zoho.Config.MaxLinger); 200ms or less: always 200ms.
	ZohoBatchLinger time.Duration `env:"CALLTRACK_ZOHO_BATCH_LINGER" envDefault:"2s"`
	// V2SummaryWait is how long a Webhook v2 call.end waits for its call.summary.
	V2SummaryWait time.Duration `env:"CALLTRACK_V2_SUMMARY_WAIT" envDefault:"5m"`
	// RecordingSigningKey signs durable recording links (with PublicURL set).
	RecordingSigningKey tenant.Secret `env:"CALLTRACK_RECORDING_SIGNING_KEY"`
	// Ingest without Kafka or Redis (README "When Kafka or Redis is down").
	PublishTimeout time.Duration `env:"CALLTRACK_PUBLISH_TIMEOUT" envDefault:"2s"`                 // then the call goes to the spool
	SpoolDir       string        `env:"CALLTRACK_SPOOL_DIR" envDefault:"/var/lib/calltrack/spool"` // a persistent volume per serve replica
	SpoolMaxBytes  int64         `env:"CALLTRACK_SPOOL_MAX_BYTES" envDefault:"1073741824"`
	RedisBudget    time.Duration `env:"CALLTRACK_INGEST_REDIS_BUDGET" envDefault:"1s"` // Redis time per webhook, before and after the publish
	// RecordingSigningKeys is the rotation form: comma-separated, the first signs new
	// links, every one verifies (RecordingKeys). Set it or RecordingSigningKey, not both.
	RecordingSigningKeys tenant.Secret `env:"CALLTRACK_RECORDING_SIGNING_KEYS"`
	// RecordingAllowHTTPLoopback lets recording links redirect to plain-http links on a
	// loopback host: `calltrack dev`'s sandbox MyOperator. Never in production.
	RecordingAllowHTTPLoopback bool `env:"CALLTRACK_RECORDING_ALLOW_HTTP_LOOPBACK"`
}

// Load reads the environment.
func Load() (Config, error) {
	var c Config
	if err := env.Parse(&c); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// Need names what a subcommand requires.
type Need struct{ Kafka, Redis, Tenants, Admin bool }

// Validate checks the settings a subcommand needs and names the first bad one.
func (c Config) Validate(n Need) error {
	var errs []error
	if n.Kafka && len(c.KafkaBrokers) == 0 {
		errs = append(errs, errors.New("CALLTRACK_KAFKA_BROKERS is required (host:port,...)"))
	}
	if n.Redis && c.RedisAddr == "" {
		errs = append(errs, errors.New("CALLTRACK_REDIS_ADDR is required (host:port or redis:// URL)"))
	}
	if n.Tenants && c.TenantsFile == "" {
		errs = append(errs, errors.New("CALLTRACK_TENANTS_FILE is required"))
	}
	if n.Admin && c.AdminToken == "" {
		errs = append(errs, errors.New("CALLTRACK_ADMIN_TOKEN is required"))
	}
	if _, err := zerolog.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("CALLTRACK_LOG_LEVEL: %w", err))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("CALLTRACK_SHUTDOWN_TIMEOUT must be positive"))
	}
	if c.WriterLease < 0 || (c.WriterLease > 0 && c.WriterLease < 4*time.Second) {
		errs = append(errs, errors.New("CALLTRACK_WRITER_LEASE must be a Go duration of at least 4s (e.g. 2m)"))
	}
	if c.ConsumerMaxBytes < 0 || (c.ConsumerMaxBytes > 0 && c.ConsumerMaxBytes < 1<<20) {
		errs = append(errs, errors.New("CALLTRACK_CONSUMER_MAX_BYTES must be at least 1048576 (1 MiB)"))
	}
	if c.GCHeapBudget < 0 {
		errs = append(errs, errors.New("CALLTRACK_GC_HEAP_BUDGET must be a number of bytes, or 0 to leave Go's GOGC as it is"))
	}
	if c.WriterSettle < 0 {
		errs = append(errs, errors.New("CALLTRACK_WRITER_SETTLE must be a positive Go duration (e.g. 2m)"))
	}
	if c.V2SummaryWait <= 0 {
		errs = append(errs, errors.New("CALLTRACK_V2_SUMMARY_WAIT must be a positive Go duration (e.g. 5m)"))
	}
	if c.PublishTimeout < 0 || c.RedisBudget < 0 || c.SpoolMaxBytes < 0 {
		errs = append(errs, errors.New("CALLTRACK_PUBLISH_TIMEOUT, CALLTRACK_INGEST_REDIS_BUDGET and CALLTRACK_SPOOL_MAX_BYTES must not be negative"))
	}
	if _, err := c.TrustedProxyRanges(); err != nil {
		errs = append(errs, err)
	}
	if c.RecordingSigningKey != "" && c.RecordingSigningKeys != "" {
		errs = append(errs, errors.New("set CALLTRACK_RECORDING_SIGNING_KEYS (new,old,...) or CALLTRACK_RECORDING_SIGNING_KEY, not both"))
	}
	for i, k := range c.RecordingKeys() {
		if len(k.Reveal()) < 16 {
			name := "CALLTRACK_RECORDING_SIGNING_KEY"
			if c.RecordingSigningKeys != "" {
				name = fmt.Sprintf("CALLTRACK_RECORDING_SIGNING_KEYS key %d", i+1)
			}
			errs = append(errs, fmt.Errorf("%s must be at least 16 characters", name))
		}
	}
	return errors.Join(errs...)
}

// TrustedProxyRanges parses CALLTRACK_TRUSTED_PROXIES: CIDRs, or single addresses.
func (c Config) TrustedProxyRanges() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("CALLTRACK_TRUSTED_PROXIES: %q is neither a CIDR (10.0.0.0/8) nor an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// RecordingKeys are the recording-link signing keys: the first signs, all verify (so a
// rotated-out key keeps old links working). Empty when none is set.
func (c Config) RecordingKeys() []tenant.Secret {
	if c.RecordingSigningKeys == "" {
		if c.RecordingSigningKey == "" {
			return nil
		}
		return []tenant.Secret{c.RecordingSigningKey}
	}
	var keys []tenant.Secret
	for _, k := range strings.Split(c.RecordingSigningKeys.Reveal(), ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, tenant.Secret(k))
		}
	}
	return keys
}

// Kafka returns the Kafka settings.
func (c Config) Kafka() kafkabus.Config {
	return kafkabus.Config{Brokers: c.KafkaBrokers, TLS: c.KafkaTLS, SASLMechanism: c.KafkaSASLMech,
		SASLUsername: c.KafkaSASLUser, SASLPassword: c.KafkaSASLPass.Reveal(),
		Partitions: c.KafkaPartitions, Replication: c.KafkaRepl, BatchTimeout: c.KafkaBatchWait}
}

// Topics returns the topic names in use.
func (c Config) Topics() kafkabus.Topics { return kafkabus.DefaultTopics().WithSuffix(c.TopicSuffix) }

// RedisAddrSafe is the Redis address as it may be printed: a URL's password masked.
func (c Config) RedisAddrSafe() string { return RedactAddr(c.RedisAddr) }

// RedactAddr masks the password of a redis:// (or any) URL; a host:port list is
// returned as it is.
func RedactAddr(addr string) string {
	if !strings.Contains(addr, "://") {
		return addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "(an unparseable URL)"
	}
	return u.Redacted()
}

// Redis opens a client: a host:port, or a redis:// / rediss:// URL; a comma-separated
// host list makes a cluster client.
func (c Config) Redis() (redis.UniversalClient, error) {
	return NewRedis(c.RedisAddr, c.RedisPassword.Reveal())
}

// NewRedis opens a Redis client for addr (see Config.Redis).
func NewRedis(addr, password string) (redis.UniversalClient, error) {
	if strings.HasPrefix(addr, "redis://") || strings.HasPrefix(addr, "rediss://") {
		opt, err := redis.ParseURL(addr)
		if err != nil {
			// url.Parse's error quotes the URL, password and all.
			if ue, ok := errors.AsType[*url.Error](err); ok {
				ue.URL = RedactAddr(ue.URL)
			}
			return nil, fmt.Errorf("CALLTRACK_REDIS_ADDR: %w", err)
		}
		if password != "" {
			opt.Password = password
		}
		opt.ReadBufferSize, opt.WriteBufferSize = redisBuffer, redisBuffer
		opt.PipelineReadBufferSize, opt.PipelineWriteBufferSize = redisBuffer, redisBuffer
		return withHooks(redis.NewClient(opt)), nil
	}
	return withHooks(redis.NewUniversalClient(&redis.UniversalOptions{Addrs: strings.Split(addr, ","), Password: password,
		ReadBufferSize: redisBuffer, WriteBufferSize: redisBuffer,
		PipelineReadBufferSize: redisBuffer, PipelineWriteBufferSize: redisBuffer})), nil
}

// redisBuffer sizes each Redis connection's read and write buffers, pipelines' too.
// go-redis gives 32 KiB, and 128 KiB to the pipeline pool's connections: 4.5 MB of
// serve's live heap of then (~11 MB, heap profile; ~5 MiB since), which the GC's heap goal doubles — the
// difference between serve's RSS under 64 MiB and over it. calltrack's commands and
// replies are small (a webhook's pipeline is under 1 KB; a big batch takes more than
// one read or write, not more memory).
const redisBuffer = 16 << 10

// withHooks adds the hooks every calltrack client has: pipelined scripts sent by SHA1.
func withHooks(c redis.UniversalClient) redis.UniversalClient {
	c.AddHook(redisscript.New())
	return c
}

// ShutdownTimeoutOr returns the shutdown timeout, or def when unset.
func (c Config) ShutdownTimeoutOr(def time.Duration) time.Duration {
	if c.ShutdownTimeout > 0 {
		return c.ShutdownTimeout
	}
	return def
}
