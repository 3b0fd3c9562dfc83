// Package catalog lists the event names that hooklog accepts: FFmate's webhook
// event catalog, matched exactly and case-sensitively.
package catalog

import "strings"

// Names is the event catalog in the order FFmate's documentation lists it.
// Callers must not modify the slice.
var Names = []string{
	"task.created", "task.updated", "task.deleted",
	"batch.created", "batch.finished",
	"preset.created", "preset.updated", "preset.deleted",
	"watchfolder.created", "watchfolder.updated", "watchfolder.deleted",
	"webhook.created", "webhook.updated", "webhook.deleted",
}

// Webhook change events, appended by hooklog when its own webhooks change.
const (
	WebhookCreated = "webhook.created"
	WebhookUpdated = "webhook.updated"
	WebhookDeleted = "webhook.deleted"
)

var known = func() map[string]bool {
	m := make(map[string]bool, len(Names))
	for _, n := range Names {
		m[n] = true
	}
	return m
}()

// Valid reports whether name is in the catalog.
func Valid(name string) bool {
	return known[name]
}

// List returns the catalog as one comma-separated string for error messages.
func List() string {
	return strings.Join(Names, ", ")
}
