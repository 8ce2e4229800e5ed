/**
 * The SNS topic portsnare's alarms notify (`alarmEmail`), for the single-account stack and each
 * organization stack alike: TLS only, not encrypted (CloudWatch alarms cannot publish to a topic
 * encrypted with the AWS managed SNS key), and a policy that lets CloudWatch publish. A topic
 * policy replaces the default one, so the service must be allowed in it, held to this account's
 * alarms (aws:SourceAccount, aws:SourceArn): the example "Allow CloudWatch alarms to publish to a
 * topic" of https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html, and
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html.
 */
import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';

export function alarmTopic(scope: Construct, email: string): sns.Topic {
  const stack = Stack.of(scope);
  const topic = new sns.Topic(scope, 'Alarms', { displayName: 'portsnare alarms', enforceSSL: true });
  topic.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsPublish',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: {
        StringEquals: { 'aws:SourceAccount': stack.account },
        ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }) },
      },
    }),
  );
  topic.addSubscription(new subscriptions.EmailSubscription(email));
  return topic;
}
