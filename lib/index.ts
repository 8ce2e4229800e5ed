export * from './appConfig';
export * from './DecoyListeners';
export * from './DesiredStateTable';
export * from './Ec2Sensor';
export * from './EnumerationBlocker';
export * from './FargateSensor';
export * from './Monitoring';
export * from './NaclCleanup';
export * from './PortsnareFunction';
export * from './PortsnareStack';
export * from './SensorFlowLogs';
export * from './sensorConfig';
export * from './settings';
export * from './WafBlocklist';
// Names lib/ used to define and users may import; their one home is core/.
export { DETAIL_TYPE_BLOCK_REQUESTED, DETAIL_TYPE_UNBLOCK_REQUESTED } from '../core/commands';
export { METRIC_DIMENSIONS, METRIC_NAMESPACE, type MetricName } from '../core/metrics';
export * from './nag';
