package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/stream"
	"github.com/ordergrid/ordergrid/webhooks"
)

// Webhooks are the webhook subscriptions (webhooks.Service in a node).
type Webhooks interface {
	// Create validates and stores a webhook, answering it with its secret.
	Create(ctx context.Context, spec webhooks.Spec) (*webhooks.Created, error)
	// List returns every webhook.
	List() ([]*webhooks.Webhook, error)
	// Get returns one webhook (webhooks.ErrNotFound).
	Get(id string) (*webhooks.Webhook, error)
	// Delete removes a webhook and its dead letters.
	Delete(ctx context.Context, id, principal string) error
	// DeadLetters lists a webhook's dead letters.
	DeadLetters(id string, limit int) ([]*webhooks.DeadLetter, error)
	// Replay asks for one dead letter (from) or every one (nil) again.
	Replay(ctx context.Context, id string, from *uint64, principal string) (int, error)
}

// webhookBody is the body of POST /v1/webhooks.
type webhookBody struct {
	URL         string        `json:"url"`
	Filter      stream.Filter `json:"filter"`
	Secret      string        `json:"secret"`
	Description string        `json:"description"`
}

func (g *Gateway) webhookRoutes(api func(string, func(http.ResponseWriter, *http.Request) *Problem)) {
	api("POST /v1/webhooks", g.postWebhook)
	api("GET /v1/webhooks", g.getWebhooks)
	api("GET /v1/webhooks/{id}", g.getWebhook)
	api("DELETE /v1/webhooks/{id}", g.deleteWebhook)
	api("GET /v1/webhooks/{id}/dead-letters", g.getDeadLetters)
	api("POST /v1/webhooks/{id}/dead-letters:replay", g.postReplay)
	api("POST /v1/webhooks/{id}/dead-letters/{from}/replay", g.postReplay)
}

// allowWebhooks checks the caller may manage webhooks (admin, or a partner
// its own) and that this node serves them.
func (g *Gateway) allowWebhooks(ctx context.Context) *Problem {
	if p := allow(ctx, "managing webhooks", RolePartner); p != nil {
		return p
	}
	if g.webhooks == nil {
		return unavailable("this node serves no webhooks")
	}
	return nil
}

// mayManage reports whether the caller sees webhook w: admin sees every
// one, a partner those it created.
func mayManage(ctx context.Context, w *webhooks.Webhook) bool {
	p := PrincipalOf(ctx)
	return p != nil && (p.Role == RoleAdmin || w.Owner == p.Name)
}

// webhookProblem answers a webhooks error.
func (g *Gateway) webhookProblem(err error, id string) *Problem {
	var fe *webhooks.FieldError
	var sfe *stream.FilterError
	switch {
	case errors.As(err, &sfe):
		return malformed("filter."+sfe.Field, sfe.Detail)
	case errors.As(err, &fe) && fe.Malformed:
		return malformed(fe.Field, fe.Detail)
	case errors.As(err, &fe):
		return invalid(&pb.FieldViolation{Field: fe.Field, Detail: fe.Detail})
	case errors.Is(err, webhooks.ErrNotFound):
		return notFound("webhook", id)
	case errors.Is(err, webhooks.ErrLimit):
		return &Problem{Status: http.StatusConflict, Name: "limit-reached", Title: "Too many webhooks", Detail: err.Error()}
	}
	return g.grainProblem(err, "webhook", id)
}

// ownWebhook reads the webhook of the path, a 404 for one the caller may
// not see.
func (g *Gateway) ownWebhook(r *http.Request) (*webhooks.Webhook, *Problem) {
	if p := g.allowWebhooks(r.Context()); p != nil {
		return nil, p
	}
	id := r.PathValue("id")
	w, err := g.webhooks.Get(id)
	if err != nil {
		return nil, g.webhookProblem(err, id)
	}
	if !mayManage(r.Context(), w) {
		return nil, notFound("webhook", id)
	}
	return w, nil
}

// postWebhook creates a webhook: 201 with it and its secret, shown once.
func (g *Gateway) postWebhook(w http.ResponseWriter, r *http.Request) *Problem {
	ctx := r.Context()
	if p := g.allowWebhooks(ctx); p != nil {
		return p
	}
	var body webhookBody
	if p := g.decode(w, r, &body, false); p != nil {
		return p
	}
	spec := webhooks.Spec{URL: body.URL, Filter: body.Filter, Secret: body.Secret, Description: body.Description, Owner: principalName(ctx)}
	if err := spec.Filter.Validate(); err != nil {
		return g.webhookProblem(err, "")
	}
	if pr := PrincipalOf(ctx); pr.Role.channelBound() {
		spec.Scope = slices.Clone(pr.Channels)
		for _, c := range spec.Filter.Channels {
			if p := allowChannel(ctx, c, "filter.channel"); p != nil {
				return p
			}
		}
	}
	created, err := g.webhooks.Create(ctx, spec)
	if err != nil {
		return g.webhookProblem(err, "")
	}
	w.Header().Set("Location", "/v1/webhooks/"+created.ID)
	writeJSON(w, http.StatusCreated, created)
	return nil
}

// getWebhooks lists the webhooks the caller sees.
func (g *Gateway) getWebhooks(w http.ResponseWriter, r *http.Request) *Problem {
	if p := g.allowWebhooks(r.Context()); p != nil {
		return p
	}
	all, err := g.webhooks.List()
	if err != nil {
		return g.webhookProblem(err, "")
	}
	out := make([]*webhooks.Webhook, 0, len(all))
	for _, wh := range all {
		if mayManage(r.Context(), wh) {
			out = append(out, wh)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": out})
	return nil
}

func (g *Gateway) getWebhook(w http.ResponseWriter, r *http.Request) *Problem {
	wh, p := g.ownWebhook(r)
	if p != nil {
		return p
	}
	writeJSON(w, http.StatusOK, wh)
	return nil
}

func (g *Gateway) deleteWebhook(w http.ResponseWriter, r *http.Request) *Problem {
	wh, p := g.ownWebhook(r)
	if p != nil {
		return p
	}
	if err := g.webhooks.Delete(r.Context(), wh.ID, principalName(r.Context())); err != nil {
		return g.webhookProblem(err, wh.ID)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (g *Gateway) getDeadLetters(w http.ResponseWriter, r *http.Request) *Problem {
	wh, p := g.ownWebhook(r)
	if p != nil {
		return p
	}
	limit, p := limitParam(r, 100, webhooks.DeadLettersListedMax)
	if p != nil {
		return p
	}
	dls, err := g.webhooks.DeadLetters(wh.ID, limit)
	if err != nil {
		return g.webhookProblem(err, wh.ID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhook": wh.ID, "dead_letters": dls})
	return nil
}

// postReplay asks for a dead letter ({from}), or every one not replayed
// yet (dead-letters:replay), to be delivered again: 202.
func (g *Gateway) postReplay(w http.ResponseWriter, r *http.Request) *Problem {
	wh, p := g.ownWebhook(r)
	if p != nil {
		return p
	}
	var from *uint64
	if s := r.PathValue("from"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return malformed("from", fmt.Sprintf("from %q: the log index a dead letter starts at", s))
		}
		from = &v
	}
	n, err := g.webhooks.Replay(r.Context(), wh.ID, from, principalName(r.Context()))
	if errors.Is(err, webhooks.ErrNotFound) && from != nil {
		return notFound("dead_letter", strconv.FormatUint(*from, 10))
	}
	if err != nil {
		return g.webhookProblem(err, wh.ID)
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"webhook": wh.ID, "replaying": n})
	return nil
}
