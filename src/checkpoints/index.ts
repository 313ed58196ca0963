// Checkpoint readers: safetensors and PyTorch state dicts, read tensor by tensor, with no code executed.
export { openCheckpoint, CHECKPOINT_FILES } from './open-checkpoint.js';
export type {
  Checkpoint,
  CheckpointFormat,
  CheckpointTensor,
  ExpectKeysOptions,
  ReadTensorOptions,
  SourceDtype,
  TensorData,
  TensorDtype,
  TensorInfo,
} from './types.js';
