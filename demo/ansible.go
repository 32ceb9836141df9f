package demo

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/tsync/tsync"
	"github.com/tsync/tsync/models"
)

// Service is a service of a site, synced by the demo's Ansible step: the
// role demo_service (playbooks/roles/demo_service) writes
// services/<service>.json in the backend, on this machine, once its site is
// there, and removes it on delete. Its Banner is free text, passed to the
// playbook as data: quotes, "$(...)" and "{{ ... }}" in it are written
// verbatim, never run.
type Service struct {
	models.Base
	Name   string `db:"name"`
	Port   int64  `db:"port"`
	Banner string `db:"banner"`
	SiteID int64  `db:"site_id"`
}

// ServiceRole is the role of the Service step.
const ServiceRole = "demo_service"

// ServiceStep is the demo's Ansible step: the role ServiceRole, run on
// localhost with a local connection (tsync.LocalTarget), with the Service's
// fields and the paths of its file and of its site's entry as variables.
// Each sync and delete leaves its playbook, variables and log in
// observer_sys_dir/Service/<id>/<sync|delete>/, with run.sh to re-run it.
func (b *Backend) ServiceStep() tsync.AnsibleStep {
	return tsync.AnsibleStepOf[Service](tsync.AnsibleStepFuncs[Service]{
		Template:   ServiceRole,
		Attributes: b.serviceAttributes,
	})
}

func (b *Backend) serviceAttributes(_ context.Context, s *Service) (map[string]any, error) {
	dir, err := filepath.Abs(b.Dir)
	if err != nil {
		return nil, fmt.Errorf("service %d: %w", s.ID, err)
	}
	return map[string]any{
		"service_name": s.Name, // not "name" nor "port": Ansible reserves those
		"service_port": s.Port,
		"banner":       s.Banner,
		"site_id":      s.SiteID,
		"path":         filepath.Join(dir, "services", strconv.FormatInt(s.ID, 10)+".json"),
		"site_json":    filepath.Join(dir, "sites", strconv.FormatInt(s.SiteID, 10), "site.json"),
	}, nil
}

// registerService registers Service, which depends on its Site.
func registerService(reg *models.Registry) {
	models.MustRegister[Service](reg, "Service", models.LinkTo[Site]("site_id"))
}

// siteService is the Service Seed makes for a site: a banner with quotes and
// shell and template syntax, all of it data.
func siteService(site *Site) *Service {
	return &Service{
		Name:   site.Name + "-web",
		Port:   8080,
		Banner: fmt.Sprintf(`Welcome to %s's "web" service: $(this is text) {{ and so is this }}`, site.Name),
		SiteID: site.ID,
	}
}
