// Command etcd is the etcd server, built from the server module's etcdmain at the
// version Kubernetes itself is tested against (see go.mod).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
