package delivery

import (
	"encoding/json"

	"github.com/chartscan/chartscan/storage"
)

func jsonMarshal(j storage.DeliveryJob) ([]byte, error) { return json.Marshal(j) }

func jsonUnmarshal(b []byte) (storage.DeliveryJob, error) {
	var j storage.DeliveryJob
	err := json.Unmarshal(b, &j)
	return j, err
}
