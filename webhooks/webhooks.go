// Package webhooks delivers the audit log's committed events to
// subscribers' HTTP endpoints: a subscription names a URL, a filter (the
// stream package's) and a secret; its events are POSTed in batches, in log
// order, signed, at least once.
//
// # Data path
//
//	POST /v1/webhooks ─► Service.Create: validate, seal the secret, propose
//	put_webhook in the partition of "webhook/{id}" (cursor = the log's head)
//
//	Service.Run (every node, every PollInterval): for each webhook of a
//	partition this node leads, one worker goroutine ─► stream.Reader from the
//	stored cursor with the webhook's filter ─► a batch (≤ BatchEventsMax
//	events, ≤ BatchBytesMax bytes) covering log indexes [cursor, to) ─► POST
//	(per-attempt timeout) ─► 2xx: propose advance_webhook(cursor → to);
//	failure: retry with exponential backoff and full jitter; after
//	AttemptsMax: advance_webhook with a dead letter for [cursor, to)
//
// The cursor lives in the grid (statemachine space W), replicated by Raft,
// and moves only from where its proposer read it: after a restart or a
// failover the partition's new leader starts a worker from the stored
// cursor, so nothing is lost; a batch delivered but not yet advanced is
// delivered again (at least once: receivers dedupe by the
// Ordergrid-Delivery header or the events' indexes). Each webhook has its
// own goroutine and each attempt its own timeout, and the stream reader
// reads the node's copy of the log (never the intake's path), so a receiver
// that hangs or fails slows neither the intake nor other webhooks.
//
// A dead letter is a log range, not a copy of the events: a replay reads
// the range again from the log with the webhook's filter and delivers it.
package webhooks

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/statemachine"
	"github.com/ordergrid/ordergrid/stream"
)

// Grid is what webhooks need of the grid: the partition that owns a key
// and every partition (actors.Node in a node).
type Grid interface {
	PartitionOf(key string) actors.Partition
	Partitions() []actors.Partition
}

// Events are the audit log's committed events (stream.Hub in a node).
type Events interface {
	// Head is the number of events the node's log holds.
	Head() (uint64, error)
	// NewReader reads the events f selects from index from on.
	NewReader(from uint64, f stream.Filter) (*stream.Reader, error)
}

// Limits and defaults.
const (
	// SecretKeyLabel is the label of the key that seals webhook secrets,
	// derived from the node's master keyring (privacy.Keyring.Derive).
	SecretKeyLabel = "ordergrid webhook secrets v1"
	// SecretPrefix starts every secret the node generates.
	SecretPrefix = "whsec_"
	// URLBytesMax bounds a webhook's URL.
	URLBytesMax = 2048
	// DescriptionBytesMax bounds a webhook's description.
	DescriptionBytesMax = 256
	// SecretBytesMin and SecretBytesMax bound a secret the caller gives.
	SecretBytesMin = 16
	SecretBytesMax = 256
	// DefaultWebhooksMax is the most webhooks a grid holds by default.
	DefaultWebhooksMax = 100
	// ListedMax bounds the webhooks one partition lists.
	ListedMax = 1000
	// DeadLettersListedMax bounds the dead letters one listing answers.
	DeadLettersListedMax = 1000
	// DefaultBatchEventsMax and DefaultBatchBytesMax bound one delivery.
	DefaultBatchEventsMax = 100
	DefaultBatchBytesMax  = 256 << 10
	// DefaultAttemptsMax is how many attempts a batch gets before it is
	// dead-lettered.
	DefaultAttemptsMax = 8
	// responseBytesMax bounds what is read of a receiver's answer.
	responseBytesMax = 64 << 10
	// errorBytesMax bounds an error kept for the status.
	errorBytesMax = 512
)

// Options configure a Service. Zero values take the defaults.
type Options struct {
	// SecretKey seals the secrets (32 bytes: AES-256-GCM), the same on
	// every node: keyring.Derive(SecretKeyLabel).
	SecretKey []byte
	// Self are the node's own listen addresses (host:port, HTTP and gRPC):
	// a webhook may not point at them.
	Self []string
	// WebhooksMax bounds the webhooks of the grid. Default DefaultWebhooksMax.
	WebhooksMax int
	// PollInterval is how often the node looks for webhooks of the
	// partitions it leads (and a worker for replays asked). Default 1s.
	PollInterval time.Duration
	// AttemptsMax bounds the attempts at one batch. Default 8.
	AttemptsMax int
	// BackoffBase and BackoffMax shape the wait before a retry: base·2^n,
	// capped, with full jitter. Defaults 1s and 5m.
	BackoffBase, BackoffMax time.Duration
	// AttemptTimeout bounds one POST. Default 10s.
	AttemptTimeout time.Duration
	// BatchEventsMax and BatchBytesMax bound one POST's events.
	BatchEventsMax, BatchBytesMax int
	// Client posts the deliveries. Default: a client that follows no
	// redirect and uses no proxy.
	Client     *http.Client
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

// Service keeps the webhooks and delivers their events.
type Service struct {
	grid   Grid
	events Events
	opts   Options
	aead   cipher.AEAD
	self   []hostPort
	m      metrics

	mu      sync.Mutex
	running map[string]*worker
	status  map[string]*Status
}

// Status is what this node knows of a webhook's delivery (its worker runs
// on the leader of the webhook's partition).
type Status struct {
	// Delivering is true when this node delivers the webhook.
	Delivering bool `json:"delivering"`
	// Attempts at the batch in hand (0 when it went through).
	Attempts int `json:"attempts"`
	// LastError is the last failure, "" when the last attempt succeeded.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when it happened.
	LastErrorAt string `json:"last_error_at,omitempty"`
	// OldestPendingUnixNano is the time of the oldest event in hand not yet
	// delivered (0: none).
	OldestPendingUnixNano int64 `json:"-"`
}

type metrics struct {
	deliveries *prometheus.CounterVec
	lagEvents  *prometheus.GaugeVec
	lagSeconds *prometheus.GaugeVec
}

// New returns the webhooks of a grid over the node's event stream.
func New(grid Grid, events Events, opts Options) (*Service, error) {
	if opts.WebhooksMax <= 0 {
		opts.WebhooksMax = DefaultWebhooksMax
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.AttemptsMax <= 0 {
		opts.AttemptsMax = DefaultAttemptsMax
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 5 * time.Minute
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 10 * time.Second
	}
	if opts.BatchEventsMax <= 0 {
		opts.BatchEventsMax = DefaultBatchEventsMax
	}
	if opts.BatchBytesMax <= 0 {
		opts.BatchBytesMax = DefaultBatchBytesMax
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var self []hostPort
	for _, a := range opts.Self {
		h, p, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("webhooks: own address %q: %w", a, err)
		}
		self = append(self, hostPort{host: strings.ToLower(h), port: p})
	}
	if opts.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// The URL was checked as written when the webhook was made; the
		// address it resolves to is checked at every connection (a name
		// that resolves to this machine, DNS rebinding, another of its
		// addresses).
		tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second,
			Control: func(_, address string, _ syscall.RawConn) error { return refuseSelf(self, address) }}).DialContext
		tr.Proxy = nil
		tr.MaxIdleConnsPerHost = 4
		tr.ResponseHeaderTimeout = opts.AttemptTimeout
		opts.Client = &http.Client{Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if len(opts.SecretKey) != 32 {
		return nil, fmt.Errorf("webhooks: the secret key has %d bytes, want 32", len(opts.SecretKey))
	}
	block, err := aes.NewCipher(opts.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	s := &Service{grid: grid, events: events, opts: opts, aead: aead, running: map[string]*worker{}, status: map[string]*Status{}, self: self}
	s.m = metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordergrid_webhook_deliveries_total",
			Help: "Webhook batches by webhook and outcome (delivered, failed: one failed attempt, dead_lettered)."}, []string{"webhook", "outcome"}),
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ordergrid_webhook_lag_events",
			Help: "Log events between a webhook's cursor and the head of the log, on the node delivering it."}, []string{"webhook"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ordergrid_webhook_lag_seconds",
			Help: "Age of the oldest event a webhook has not delivered yet, on the node delivering it."}, []string{"webhook"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.m.deliveries, s.m.lagEvents, s.m.lagSeconds)
	}
	return s, nil
}

// FieldError is a request the service refuses: Field names the request
// field at fault. Malformed is a request not of the API's shape (400), else
// its value is refused (422).
type FieldError struct {
	Field     string
	Detail    string
	Malformed bool
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Detail }

// Errors of the service.
var (
	// ErrNotFound is a webhook or dead letter that does not exist.
	ErrNotFound = errors.New("webhooks: not found")
	// ErrLimit is a create beyond WebhooksMax.
	ErrLimit = errors.New("webhooks: at the limit of webhooks")
)

// Spec is a webhook to create.
type Spec struct {
	URL         string
	Filter      stream.Filter
	Secret      string
	Description string
	// Owner is the creating principal's name.
	Owner string
	// Scope, when not nil, is the channels the owner may see (a
	// channel-bound token's): the webhook sees only their orders' events.
	Scope []string
}

// Webhook is a webhook as the API shows it.
type Webhook struct {
	ID          string        `json:"id"`
	URL         string        `json:"url"`
	Filter      stream.Filter `json:"filter"`
	Description string        `json:"description,omitempty"`
	Owner       string        `json:"owner"`
	Scope       []string      `json:"scope,omitempty"`
	CreatedAt   string        `json:"created_at"`
	// Cursor is the log index of the next event to deliver.
	Cursor           uint64  `json:"cursor"`
	AdvancedAt       string  `json:"advanced_at,omitempty"`
	BatchesDelivered uint64  `json:"batches_delivered"`
	DeadLettered     uint64  `json:"dead_lettered"`
	LagEvents        uint64  `json:"lag_events"`
	LagSeconds       float64 `json:"lag_seconds"`
	Status           *Status `json:"status,omitempty"`
}

// Created is a webhook just created, with its secret (shown this once).
type Created struct {
	*Webhook
	Secret string `json:"secret"`
}

// DeadLetter is a dead letter as the API shows it.
type DeadLetter struct {
	From       uint64 `json:"from"`
	To         uint64 `json:"to"`
	Attempts   uint32 `json:"attempts"`
	LastError  string `json:"last_error"`
	At         string `json:"at"`
	State      string `json:"state"`
	ReplayedAt string `json:"replayed_at,omitempty"`
}

// partitionKey places a webhook.
func partitionKey(id string) string { return "webhook/" + id }

// Create validates and stores a webhook; its cursor starts at the log's
// head (the events committed from now on).
func (s *Service) Create(ctx context.Context, spec Spec) (*Created, error) {
	if err := s.CheckURL(spec.URL); err != nil {
		return nil, err
	}
	f := spec.Filter
	if err := f.Validate(); err != nil {
		var fe *stream.FilterError
		if errors.As(err, &fe) {
			return nil, &FieldError{Field: "filter." + fe.Field, Detail: fe.Detail, Malformed: true}
		}
		return nil, &FieldError{Field: "filter", Detail: err.Error(), Malformed: true}
	}
	if len(spec.Description) > DescriptionBytesMax || !utf8.ValidString(spec.Description) {
		return nil, &FieldError{Field: "description", Detail: fmt.Sprintf("at most %d bytes of UTF-8", DescriptionBytesMax)}
	}
	secret := spec.Secret
	if secret == "" {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("webhooks: secret: %w", err)
		}
		secret = SecretPrefix + base64.RawURLEncoding.EncodeToString(raw)
	} else if len(secret) < SecretBytesMin || len(secret) > SecretBytesMax ||
		strings.ContainsFunc(secret, func(r rune) bool { return r <= 0x20 || r >= 0x7f }) {
		return nil, &FieldError{Field: "secret", Detail: fmt.Sprintf("%d to %d printable ASCII characters (omit it and the node makes one)", SecretBytesMin, SecretBytesMax)}
	}
	all, err := s.records()
	if err != nil {
		return nil, err
	}
	if len(all) >= s.opts.WebhooksMax {
		return nil, fmt.Errorf("%w: %d webhooks, at most %d (webhooks.max)", ErrLimit, len(all), s.opts.WebhooksMax)
	}
	head, err := s.events.Head()
	if err != nil {
		return nil, fmt.Errorf("webhooks: the log's head: %w", err)
	}
	idRaw := make([]byte, 10)
	if _, err := rand.Read(idRaw); err != nil {
		return nil, fmt.Errorf("webhooks: id: %w", err)
	}
	id := "wh_" + hex.EncodeToString(idRaw)
	rec := &gridpb.WebhookRecord{Id: id, Url: spec.URL, Filter: filterRecord(f), SealedSecret: s.seal(id, secret), Owner: spec.Owner,
		Scope: spec.Scope, Scoped: spec.Scope != nil, Description: spec.Description, Cursor: head}
	p := s.grid.PartitionOf(partitionKey(id))
	res, err := p.Propose(ctx, spec.Owner, &gridpb.Command{Kind: &gridpb.Command_PutWebhook{PutWebhook: &gridpb.PutWebhookCommand{Webhook: rec}}})
	if err != nil {
		return nil, fmt.Errorf("webhooks: create: %w", err)
	}
	if res.Outcome != gridpb.Outcome_OUTCOME_OK {
		return nil, fmt.Errorf("webhooks: create: %s %s", res.Outcome, res.Detail)
	}
	return &Created{Webhook: s.view(res.Webhook, head), Secret: secret}, nil
}

// records reads every webhook of the grid.
func (s *Service) records() ([]*gridpb.WebhookRecord, error) {
	var out []*gridpb.WebhookRecord
	for _, p := range s.grid.Partitions() {
		ws, err := statemachine.Webhooks(p.Reader(), p.Prefix(), ListedMax)
		if err != nil {
			return nil, fmt.Errorf("webhooks: list: %w", err)
		}
		out = append(out, ws...)
	}
	slices.SortFunc(out, func(a, b *gridpb.WebhookRecord) int { return strings.Compare(a.Id, b.Id) })
	return out, nil
}

// List returns every webhook, by id.
func (s *Service) List() ([]*Webhook, error) {
	all, err := s.records()
	if err != nil {
		return nil, err
	}
	head, _ := s.events.Head()
	out := make([]*Webhook, len(all))
	for i, w := range all {
		out[i] = s.view(w, head)
	}
	return out, nil
}

func (s *Service) read(id string) (actors.Partition, *gridpb.WebhookRecord, error) {
	if id == "" || len(id) > 64 {
		return nil, nil, ErrNotFound
	}
	p := s.grid.PartitionOf(partitionKey(id))
	w, ok, err := statemachine.ReadWebhook(p.Reader(), p.Prefix(), id)
	if err != nil {
		return nil, nil, fmt.Errorf("webhooks: read: %w", err)
	}
	if !ok {
		return nil, nil, ErrNotFound
	}
	return p, w, nil
}

// Get returns one webhook with its lag.
func (s *Service) Get(id string) (*Webhook, error) {
	_, w, err := s.read(id)
	if err != nil {
		return nil, err
	}
	head, _ := s.events.Head()
	return s.view(w, head), nil
}

// Delete removes a webhook and its dead letters; its worker stops.
func (s *Service) Delete(ctx context.Context, id, principal string) error {
	p, _, err := s.read(id)
	if err != nil {
		return err
	}
	res, err := p.Propose(ctx, principal, &gridpb.Command{Kind: &gridpb.Command_DeleteWebhook{DeleteWebhook: &gridpb.DeleteWebhookCommand{Id: id}}})
	if err != nil {
		return fmt.Errorf("webhooks: delete: %w", err)
	}
	if res.Outcome == gridpb.Outcome_OUTCOME_NOT_FOUND {
		return ErrNotFound
	}
	s.mu.Lock()
	if wk := s.running[id]; wk != nil {
		wk.cancel()
	}
	s.mu.Unlock()
	return nil
}

// DeadLetters lists a webhook's dead letters, oldest range first.
func (s *Service) DeadLetters(id string, limit int) ([]*DeadLetter, error) {
	p, _, err := s.read(id)
	if err != nil {
		return nil, err
	}
	dls, err := statemachine.DeadLetters(p.Reader(), p.Prefix(), id, min(max(limit, 1), DeadLettersListedMax))
	if err != nil {
		return nil, fmt.Errorf("webhooks: dead letters: %w", err)
	}
	out := make([]*DeadLetter, len(dls))
	for i, d := range dls {
		out[i] = &DeadLetter{From: d.From, To: d.To, Attempts: d.Attempts, LastError: d.LastError, At: timeString(d.AtUnixNano),
			State: d.State, ReplayedAt: timeString(d.ReplayedUnixNano)}
	}
	return out, nil
}

// Replay asks for a dead letter (from), or every one not replayed yet
// (from nil), to be delivered again; the webhook's worker delivers them
// ahead of new events. It answers how many were asked for.
func (s *Service) Replay(ctx context.Context, id string, from *uint64, principal string) (int, error) {
	p, _, err := s.read(id)
	if err != nil {
		return 0, err
	}
	n := 0
	err = eachDeadLetter(p, id, from, func(d *gridpb.WebhookDeadLetterRecord) (bool, error) {
		if from != nil && d.From != *from || from == nil && d.State != statemachine.DeadLetterDead {
			return from == nil, nil // one asked for: only the first can be it
		}
		res, err := p.Propose(ctx, principal, &gridpb.Command{Kind: &gridpb.Command_MarkDeadLetter{MarkDeadLetter: &gridpb.MarkDeadLetterCommand{
			Webhook: id, From: d.From, State: statemachine.DeadLetterReplaying}}})
		if err != nil {
			return false, fmt.Errorf("webhooks: replay: %w", err)
		}
		if res.Outcome == gridpb.Outcome_OUTCOME_OK {
			n++
		}
		return from == nil, nil
	})
	if err != nil {
		return n, err
	}
	if from != nil && n == 0 {
		return 0, ErrNotFound
	}
	return n, nil
}

// view is the API's view of a record, with its lag against head.
func (s *Service) view(w *gridpb.WebhookRecord, head uint64) *Webhook {
	v := &Webhook{ID: w.Id, URL: w.Url, Filter: filterOf(w), Description: w.Description, Owner: w.Owner, Scope: w.Scope,
		CreatedAt: timeString(w.CreatedUnixNano), Cursor: w.Cursor, AdvancedAt: timeString(w.AdvancedUnixNano),
		BatchesDelivered: w.BatchesDelivered, DeadLettered: w.DeadLettered}
	if head > w.Cursor {
		v.LagEvents = head - w.Cursor
		v.LagSeconds = max(s.opts.Now().Sub(time.Unix(0, w.AdvancedUnixNano)).Seconds(), 0)
	}
	s.mu.Lock()
	if st := s.status[w.Id]; st != nil {
		c := *st
		v.Status = &c
		if c.OldestPendingUnixNano != 0 {
			v.LagSeconds = max(s.opts.Now().Sub(time.Unix(0, c.OldestPendingUnixNano)).Seconds(), 0)
		}
	}
	s.mu.Unlock()
	return v
}

func timeString(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

func filterRecord(f stream.Filter) *gridpb.WebhookFilter {
	return &gridpb.WebhookFilter{Orders: f.Orders, Channels: f.Channels, Warehouses: f.Warehouses, Statuses: f.Statuses, Kinds: f.Kinds, Types: f.Types}
}

// filterOf is a webhook's stream filter, its scope included.
func filterOf(w *gridpb.WebhookRecord) stream.Filter {
	f := stream.Filter{}
	if fr := w.Filter; fr != nil {
		f = stream.Filter{Orders: fr.Orders, Channels: fr.Channels, Warehouses: fr.Warehouses, Statuses: fr.Statuses, Kinds: fr.Kinds, Types: fr.Types}
	}
	if w.Scoped {
		f.Scope = append([]string{}, w.Scope...)
	}
	return f
}

// seal encrypts a secret for the record (nonce first; the id is bound as
// additional data).
func (s *Service) seal(id, secret string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("webhooks: nonce: %v", err))
	}
	return s.aead.Seal(nonce, nonce, []byte(secret), []byte(id))
}

// open decrypts a record's secret.
func (s *Service) open(w *gridpb.WebhookRecord) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(w.SealedSecret) < n {
		return nil, errors.New("webhooks: sealed secret too short")
	}
	out, err := s.aead.Open(nil, w.SealedSecret[:n], w.SealedSecret[n:], []byte(w.Id))
	if err != nil {
		return nil, fmt.Errorf("webhooks: open the secret of %s (master keyring changed?): %w", w.Id, err)
	}
	return out, nil
}

// Sign is the Ordergrid-Signature header value of body sent at t under
// secret: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header against body and secret, and that its
// time is within tolerance of now: what a receiver does.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("webhooks: malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhooks: signature too old or from the future")
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return errors.New("webhooks: signature does not match")
	}
	return nil
}

type hostPort struct{ host, port string }

// CheckURL refuses a URL a webhook may not POST to: not absolute http(s)
// with a host, too long, with userinfo, or one of the node's own listen
// addresses (its HTTP or gRPC port on a host that is this node:
// localhost, loopback, unspecified, its hostname or its listen host).
func (s *Service) CheckURL(raw string) error {
	bad := func(detail string) error { return &FieldError{Field: "url", Detail: detail} }
	if raw == "" {
		return bad("required: the http or https URL to POST events to")
	}
	if len(raw) > URLBytesMax {
		return bad(fmt.Sprintf("%d bytes, at most %d", len(raw), URLBytesMax))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return bad(fmt.Sprintf("scheme %q: only http and https", u.Scheme))
	}
	if u.Host == "" || u.Hostname() == "" {
		return bad("an absolute URL with a host is required")
	}
	if u.User != nil {
		return bad("no user information in the URL; authenticate with the signature")
	}
	if u.Fragment != "" {
		return bad("no fragment")
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	for _, sp := range s.self {
		if sp.port == port && (host == sp.host || isNodeHost(host)) {
			return bad(fmt.Sprintf("%s is this node's own address: a webhook may not call the node itself", net.JoinHostPort(host, port)))
		}
	}
	return nil
}

// ErrSelf is a delivery refused because its address is this node's own.
var ErrSelf = errors.New("webhooks: the address is this node's own")

// refuseSelf refuses a connection to address (a resolved IP:port) when it
// is one of the node's listen ports on an address of this machine.
func refuseSelf(self []hostPort, address string) error {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	for _, sp := range self {
		if sp.port != port {
			continue
		}
		if ip == nil || ip.IsLoopback() || ip.IsUnspecified() || localAddress(ip) {
			return fmt.Errorf("%w: %s", ErrSelf, address)
		}
	}
	return nil
}

// localAddress reports whether ip is an address of this machine's interfaces.
func localAddress(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// isNodeHost reports whether host names this machine.
func isNodeHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback() || ip.IsUnspecified()
	}
	if name, err := os.Hostname(); err == nil && strings.EqualFold(name, host) {
		return true
	}
	return false
}

// deadLetterPagesMax bounds the pages of dead letters one pass reads
// (DeadLettersListedMax each).
const deadLetterPagesMax = 100

// eachDeadLetter calls f with a webhook's dead letters from from (nil: the
// first) on, a page at a time, until f answers false or they end.
func eachDeadLetter(p actors.Partition, id string, from *uint64, f func(*gridpb.WebhookDeadLetterRecord) (bool, error)) error {
	var next uint64
	if from != nil {
		next = *from
	}
	for page := 0; page < deadLetterPagesMax; page++ {
		dls, err := statemachine.DeadLettersFrom(p.Reader(), p.Prefix(), id, next, DeadLettersListedMax)
		if err != nil {
			return fmt.Errorf("webhooks: dead letters: %w", err)
		}
		for _, d := range dls {
			more, err := f(d)
			if err != nil || !more {
				return err
			}
			next = d.From + 1
		}
		if len(dls) < DeadLettersListedMax {
			return nil
		}
	}
	return nil
}
