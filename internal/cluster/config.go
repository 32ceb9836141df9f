package cluster

import (
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// configEnv is the name of the generated configs: config/cluster.yaml for
// the server, ui/cluster.yaml for the Web UI (both load "<env>.yaml" from
// their config directory).
const configEnv = "cluster"

// numHistoryShards is small, for a quick start; it cannot change once a
// cluster's database has been used.
const numHistoryShards = 4

// The server config: the subset of go.temporal.io/server/common/config's
// Config that the cluster sets, modelled on the module's
// config/development-postgres12.yaml.
type (
	serverConfig struct {
		Log                 logConfig                `yaml:"log"`
		Persistence         persistenceConfig        `yaml:"persistence"`
		Global              globalConfig             `yaml:"global"`
		Services            map[string]serviceConfig `yaml:"services"`
		ClusterMetadata     clusterMetadata          `yaml:"clusterMetadata"`
		DCRedirectionPolicy struct {
			Policy string `yaml:"policy"`
		} `yaml:"dcRedirectionPolicy"`
		Archival            archivalConfig          `yaml:"archival"`
		NamespaceDefaults   namespaceDefaultsConfig `yaml:"namespaceDefaults"`
		DynamicConfigClient struct {
			Filepath     string `yaml:"filepath"`
			PollInterval string `yaml:"pollInterval"`
		} `yaml:"dynamicConfigClient"`
	}
	logConfig struct {
		Stdout bool   `yaml:"stdout"`
		Level  string `yaml:"level"`
		Format string `yaml:"format"`
	}
	persistenceConfig struct {
		DefaultStore     string                     `yaml:"defaultStore"`
		VisibilityStore  string                     `yaml:"visibilityStore"`
		NumHistoryShards int                        `yaml:"numHistoryShards"`
		DataStores       map[string]dataStoreConfig `yaml:"datastores"`
	}
	dataStoreConfig struct {
		SQL sqlConfig `yaml:"sql"`
	}
	sqlConfig struct {
		PluginName      string        `yaml:"pluginName"`
		DatabaseName    string        `yaml:"databaseName"`
		ConnectAddr     string        `yaml:"connectAddr"`
		ConnectProtocol string        `yaml:"connectProtocol"`
		User            string        `yaml:"user"`
		Password        string        `yaml:"password,omitempty"`
		MaxConns        int           `yaml:"maxConns"`
		MaxIdleConns    int           `yaml:"maxIdleConns"`
		MaxConnLifetime string        `yaml:"maxConnLifetime"`
		TLS             *sqlTLSConfig `yaml:"tls,omitempty"`
	}
	sqlTLSConfig struct {
		Enabled                bool `yaml:"enabled"`
		EnableHostVerification bool `yaml:"enableHostVerification"`
	}
	globalConfig struct {
		Membership struct {
			MaxJoinDuration  string `yaml:"maxJoinDuration"`
			BroadcastAddress string `yaml:"broadcastAddress"`
		} `yaml:"membership"`
		TLS *rootTLSConfig `yaml:"tls,omitempty"`
	}
	rootTLSConfig struct {
		Frontend     groupTLSConfig  `yaml:"frontend"`
		SystemWorker workerTLSConfig `yaml:"systemWorker"`
	}
	groupTLSConfig struct {
		Server serverTLSConfig `yaml:"server"`
		Client clientTLSConfig `yaml:"client"`
	}
	serverTLSConfig struct {
		CertFile          string   `yaml:"certFile"`
		KeyFile           string   `yaml:"keyFile"`
		ClientCAFiles     []string `yaml:"clientCaFiles"`
		RequireClientAuth bool     `yaml:"requireClientAuth"`
	}
	clientTLSConfig struct {
		ServerName  string   `yaml:"serverName,omitempty"`
		RootCAFiles []string `yaml:"rootCaFiles"`
	}
	workerTLSConfig struct {
		CertFile string          `yaml:"certFile"`
		KeyFile  string          `yaml:"keyFile"`
		Client   clientTLSConfig `yaml:"client"`
	}
	serviceConfig struct {
		RPC struct {
			GRPCPort       int    `yaml:"grpcPort"`
			MembershipPort int    `yaml:"membershipPort"`
			BindOnIP       string `yaml:"bindOnIP"`
		} `yaml:"rpc"`
	}
	clusterMetadata struct {
		EnableGlobalNamespace    bool                          `yaml:"enableGlobalNamespace"`
		FailoverVersionIncrement int                           `yaml:"failoverVersionIncrement"`
		MasterClusterName        string                        `yaml:"masterClusterName"`
		CurrentClusterName       string                        `yaml:"currentClusterName"`
		ClusterInformation       map[string]clusterInformation `yaml:"clusterInformation"`
	}
	clusterInformation struct {
		Enabled                bool   `yaml:"enabled"`
		InitialFailoverVersion int    `yaml:"initialFailoverVersion"`
		RPCName                string `yaml:"rpcName"`
		RPCAddress             string `yaml:"rpcAddress"`
	}
	archivalConfig struct {
		History    archivalState `yaml:"history"`
		Visibility archivalState `yaml:"visibility"`
	}
	archivalState struct {
		State string `yaml:"state"`
	}
	namespaceDefaultsConfig struct {
		Archival archivalConfig `yaml:"archival"`
	}
)

// The connections each service process may open to PostgreSQL: a cluster
// opens at most 4 * (persistenceConns + visibilityConns), and keeps about
// half of them idle. Small, so that a few clusters and their tests fit in
// PostgreSQL's default max_connections (100).
const (
	persistenceConns = 6
	visibilityConns  = 2
)

// serverConfig is the config of the cluster's services.
func (c *Cluster) serverConfig() serverConfig {
	var cfg serverConfig
	cfg.Log = logConfig{Stdout: true, Level: c.opts.LogLevel, Format: "console"}
	store := func(name string, maxConns, maxIdle int) dataStoreConfig {
		s := sqlConfig{
			PluginName:      "postgres12",
			DatabaseName:    name,
			ConnectAddr:     c.db.addr(),
			ConnectProtocol: "tcp",
			User:            c.db.user,
			Password:        c.db.pass,
			MaxConns:        maxConns,
			MaxIdleConns:    maxIdle,
			MaxConnLifetime: "1h",
		}
		if c.db.tls {
			s.TLS = &sqlTLSConfig{Enabled: true, EnableHostVerification: c.db.verify}
		}
		return dataStoreConfig{SQL: s}
	}
	cfg.Persistence = persistenceConfig{
		DefaultStore:     "postgres-default",
		VisibilityStore:  "postgres-visibility",
		NumHistoryShards: numHistoryShards,
		DataStores: map[string]dataStoreConfig{
			"postgres-default":    store(c.db.names[0], persistenceConns, persistenceConns/2),
			"postgres-visibility": store(c.db.names[1], visibilityConns, 1),
		},
	}
	cfg.Global.Membership.MaxJoinDuration = "30s"
	cfg.Global.Membership.BroadcastAddress = dialHost(c.opts.Host)
	if t := c.opts.TLS; t != nil {
		client := clientTLSConfig{ServerName: t.ServerName, RootCAFiles: []string{c.tls.caFile}}
		cfg.Global.TLS = &rootTLSConfig{
			Frontend: groupTLSConfig{
				Server: serverTLSConfig{
					CertFile:          c.tls.certFile,
					KeyFile:           c.tls.keyFile,
					ClientCAFiles:     []string{c.tls.caFile},
					RequireClientAuth: true,
				},
				Client: client,
			},
			SystemWorker: workerTLSConfig{CertFile: c.tls.clientCertFile, KeyFile: c.tls.clientKeyFile, Client: client},
		}
	}
	cfg.Services = map[string]serviceConfig{}
	for _, name := range Services {
		var s serviceConfig
		s.RPC.GRPCPort = c.ports.grpc[name]
		s.RPC.MembershipPort = c.ports.membership[name]
		s.RPC.BindOnIP = c.opts.Host
		cfg.Services[name] = s
	}
	cfg.ClusterMetadata = clusterMetadata{
		FailoverVersionIncrement: 10,
		MasterClusterName:        "active",
		CurrentClusterName:       "active",
		ClusterInformation: map[string]clusterInformation{"active": {
			Enabled:                true,
			InitialFailoverVersion: 1,
			RPCName:                "frontend",
			RPCAddress:             c.hostPort,
		}},
	}
	cfg.DCRedirectionPolicy.Policy = "noop"
	disabled := archivalConfig{History: archivalState{"disabled"}, Visibility: archivalState{"disabled"}}
	cfg.Archival = disabled
	cfg.NamespaceDefaults.Archival = disabled
	cfg.DynamicConfigClient.Filepath = dynamicConfigFile(c.dir)
	cfg.DynamicConfigClient.PollInterval = "10s"
	return cfg
}

// dynamicConfig is the cluster's dynamic config:
//
//   - Each history shard's transfer queue is read up to 200 times a second
//     rather than 20, so that a task (a workflow or activity task to
//     dispatch) waits 5 ms rather than up to 50 before it is sent to
//     matching: the latency from a change to its sync, at little cost at
//     idle (a read is one indexed query per shard).
//   - The transfer and visibility queues save their progress every second
//     rather than every 30. A queue forgets the tasks it has done only
//     when it saves, and every read of new tasks walks all those it holds
//     (queues.executableTracker.split): at 200 reads a second and a
//     hundred workflows a second, that walk took a fifth of the dev
//     server's CPU by a bench's second round (issue 15's profiles). A save
//     is one write per shard and queue.
const dynamicConfig = `history.transferProcessorMaxPollRPS:
  - value: 200
history.transferProcessorUpdateAckInterval:
  - value: 1s
history.visibilityProcessorUpdateAckInterval:
  - value: 1s
`

// dynamicConfigFile is the dynamic config's path under dir.
func dynamicConfigFile(dir string) string {
	return filepath.Join(dir, "config", "dynamicconfig.yaml")
}

// serverConfigFile is the server config's path under dir.
func serverConfigFile(dir string) string {
	return filepath.Join(dir, "config", configEnv+".yaml")
}

// writeServerConfig writes the server config, readable by its owner only
// (it holds the database password).
func writeServerConfig(dir string, cfg serverConfig) error {
	if err := writeYAML(serverConfigFile(dir), cfg, 0o600); err != nil {
		return err
	}
	return os.WriteFile(dynamicConfigFile(dir), []byte(dynamicConfig), 0o644)
}

// uiConfig is the Web UI server's config (the subset of
// github.com/temporalio/ui-server/v2/server/config's Config it sets).
type uiConfig struct {
	TemporalGRPCAddress string `yaml:"temporalGrpcAddress"`
	Host                string `yaml:"host"`
	Port                int    `yaml:"port"`
	EnableUI            bool   `yaml:"enableUi"`
	DefaultNamespace    string `yaml:"defaultNamespace"`
	CORS                struct {
		CookieInsecure bool `yaml:"cookieInsecure"`
	} `yaml:"cors"`
	TLS struct {
		CAFile                 string `yaml:"caFile,omitempty"`
		CertFile               string `yaml:"certFile,omitempty"`
		KeyFile                string `yaml:"keyFile,omitempty"`
		EnableHostVerification bool   `yaml:"enableHostVerification"`
		ServerName             string `yaml:"serverName,omitempty"`
	} `yaml:"tls"`
	HideLogs bool `yaml:"hideLogs"`
}

func (c *Cluster) uiConfig() uiConfig {
	cfg := uiConfig{
		TemporalGRPCAddress: c.hostPort,
		Host:                c.opts.Host,
		Port:                c.ports.ui,
		EnableUI:            true,
		DefaultNamespace:    c.opts.Namespace,
	}
	// Served over plain HTTP: its cookies cannot be Secure.
	cfg.CORS.CookieInsecure = true
	if c.tls != nil {
		cfg.TLS.CAFile = c.tls.caFile
		cfg.TLS.CertFile = c.tls.clientCertFile
		cfg.TLS.KeyFile = c.tls.clientKeyFile
		cfg.TLS.EnableHostVerification = true
		cfg.TLS.ServerName = c.opts.TLS.ServerName
	}
	return cfg
}

func uiConfigFile(dir string) string { return filepath.Join(dir, "ui", configEnv+".yaml") }

func writeUIConfig(dir string, cfg uiConfig) error {
	return writeYAML(uiConfigFile(dir), cfg, 0o644)
}

func writeYAML(file string, v any, mode os.FileMode) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("cluster: config %s: %w", file, err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("cluster: config: %w", err)
	}
	header := "# Generated by tsync's internal/cluster; rewritten at each start.\n"
	if err := os.WriteFile(file, append([]byte(header), data...), mode); err != nil {
		return fmt.Errorf("cluster: config: %w", err)
	}
	// WriteFile keeps the mode of a file that exists.
	if err := os.Chmod(file, mode); err != nil {
		return fmt.Errorf("cluster: config: %w", err)
	}
	return nil
}
