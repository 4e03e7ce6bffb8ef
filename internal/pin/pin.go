// Package pin keeps dependencies in go.mod while the packages that use them are written. Temporary.
package pin

import (
	_ "github.com/fasthttp/websocket"
	_ "github.com/hashicorp/consul/api"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/valyala/fasthttp"
	_ "go.uber.org/zap"
	_ "go.yaml.in/yaml/v3"
)
