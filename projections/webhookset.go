// Package projections folds the event log into current state. The webhook
// set is the first projection: hooklog's own webhook.created, webhook.updated
// and webhook.deleted events rebuild it.
package projections

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/hooklog/hooklog/catalog"
	"github.com/hooklog/hooklog/eventlog"
)

// webhookEvents are the event names the webhook set folds.
var webhookEvents = []string{catalog.WebhookCreated, catalog.WebhookUpdated, catalog.WebhookDeleted}

// WebhookSet is the subscription set as of a log position. Apply is a pure
// fold: the same records in the same order give the same set.
type WebhookSet struct {
	// Seq is the last log position the set covers.
	Seq uint64
	// Webhooks maps a webhook id to the webhook.
	Webhooks map[string]Webhook
}

// NewWebhookSet returns an empty set at the start of the log.
func NewWebhookSet() WebhookSet {
	return WebhookSet{Webhooks: make(map[string]Webhook)}
}

// Apply folds one record into the set. Records must come in log order.
// Published webhook.* events (for example FFmate's own) are not hooklog's
// webhooks and change nothing but Seq.
func (s *WebhookSet) Apply(r eventlog.Record) error {
	if r.Seq <= s.Seq {
		return fmt.Errorf("apply seq %d: set already covers seq %d", r.Seq, s.Seq)
	}
	s.Seq = r.Seq

	if r.Source != eventlog.SourceInternal {
		return nil
	}

	var hook Webhook
	switch r.Event {
	case catalog.WebhookCreated, catalog.WebhookUpdated, catalog.WebhookDeleted:
		if err := json.Unmarshal(r.Data, &hook); err != nil {
			return fmt.Errorf("apply %s at seq %d: %w", r.Event, r.Seq, err)
		}
	default:
		return nil
	}

	if hook.State == "" {
		hook.State = StateActive
	}
	old, exists := s.Webhooks[hook.UUID]
	switch r.Event {
	case catalog.WebhookCreated:
		hook.CreatedSeq = r.Seq
		s.Webhooks[hook.UUID] = hook
	case catalog.WebhookUpdated:
		// An update that raced with a delete finds nothing to update.
		if exists {
			hook.CreatedSeq = old.CreatedSeq
			s.Webhooks[hook.UUID] = hook
		}
	case catalog.WebhookDeleted:
		delete(s.Webhooks, hook.UUID)
	}
	return nil
}

// Sorted returns the webhooks newest first, as FFmate lists them.
func (s *WebhookSet) Sorted() []Webhook {
	list := make([]Webhook, 0, len(s.Webhooks))
	for _, h := range s.Webhooks {
		list = append(list, h)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].CreatedSeq > list[j].CreatedSeq })
	return list
}

// clone returns a deep copy of the set.
func (s *WebhookSet) clone() WebhookSet {
	c := WebhookSet{Seq: s.Seq, Webhooks: make(map[string]Webhook, len(s.Webhooks))}
	for id, h := range s.Webhooks {
		c.Webhooks[id] = h
	}
	return c
}

// Rebuild folds the whole log into a new set.
func Rebuild(log *eventlog.Log) (WebhookSet, error) {
	set := NewWebhookSet()
	if _, err := catchUp(log, &set, log.Head()); err != nil {
		return WebhookSet{}, err
	}
	return set, nil
}

// catchUp folds the webhook events in (set.Seq, through] into set, moves
// set.Seq to through and returns how many of hooklog's own webhook changes it
// folded. It reads only the name index of webhook events, so its cost grows
// with the number of webhook events, not of all events.
func catchUp(log *eventlog.Log, set *WebhookSet, through uint64) (int, error) {
	changes := 0
	for set.Seq < through {
		records, err := log.Read(eventlog.Query{After: set.Seq, Through: through, Limit: 1000, Events: webhookEvents})
		if err != nil {
			return changes, err
		}
		if len(records) == 0 {
			set.Seq = through
			break
		}

		for _, r := range records {
			if err := set.Apply(r); err != nil {
				return changes, err
			}
			if r.Source == eventlog.SourceInternal {
				changes++
			}
		}
	}
	return changes, nil
}
